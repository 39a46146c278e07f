"""Device profiles as data (as ThingsBoard's): the sensor rules of each kind of device, in the deployment file
(``device_profiles:``) and editable through the API at run time.

A profile is a list of rules over named metrics plus how many missed heartbeats make a device offline.
The shipped defaults are the rule sets of :mod:`detectors.sensor_profiles` (smoke, gas, water level,
井盖 tilt, door, fence, battery, heartbeat); a deployment's profile of the same name replaces the shipped
one, other names add profiles. :class:`ProfileBook` holds the live set; the sensor rule engine asks it
for a device's rules and rebuilds a device's rule state when its profile changed (the state of that
device's rules starts afresh: a rule firing before the change fires again if still true).

YAML::

    device_profiles:
      smoke:
        missed_heartbeats: 3
        rules:
          - {type: threshold, name: smoke, metric: smoke, kind: smoke_alarm, above: 8, clear: 4}
          - {type: threshold, name: low_battery, metric: battery, kind: low_battery, below: 20, clear: 30}
"""
from __future__ import annotations

import threading
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.sensor_profiles import PROFILES, SHIPPED, CountInWindow, Duration, RateOfChange, Rule, Threshold

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OneBound(_Strict):
    @model_validator(mode="after")
    def _exactly_one_bound(self):  # noqa: ANN202
        if (getattr(self, "above") is None) == (getattr(self, "below") is None):
            raise ValueError("give exactly one of above/below")
        return self


class ThresholdSpec(_OneBound):
    """Fires when the value reaches ``above`` (≥) or ``below`` (≤); clears only past ``clear`` (hysteresis)."""

    type: Literal["threshold"]
    name: str = Field(pattern=NAME)
    metric: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64, description="the anomaly kind (its category in alerts.categories)")
    above: float | None = None
    below: float | None = None
    clear: float | None = None

    def rule(self) -> Rule:
        return Threshold(self.name, self.metric, self.kind, self.above, self.below, self.clear)


class DurationSpec(_OneBound):
    """Fires when the value stays above ``above`` (or below ``below``) for ``for_s`` seconds of device time."""

    type: Literal["duration"]
    name: str = Field(pattern=NAME)
    metric: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    for_s: float = Field(gt=0)
    above: float | None = None
    below: float | None = None

    def rule(self) -> Rule:
        return Duration(self.name, self.metric, self.kind, self.for_s, self.above, self.below)


class RateOfChangeSpec(_Strict):
    """Fires when the value rose by ``rise`` (fell, when negative) within ``within_s``."""

    type: Literal["rate_of_change"]
    name: str = Field(pattern=NAME)
    metric: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    rise: float
    within_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _some_change(self) -> "RateOfChangeSpec":
        if self.rise == 0:
            raise ValueError("rise must not be 0")
        return self

    def rule(self) -> Rule:
        return RateOfChange(self.name, self.metric, self.kind, self.rise, self.within_s)


class CountInWindowSpec(_Strict):
    """Fires when at least ``count`` readings ≥ ``at_least`` fall within ``window_s``."""

    type: Literal["count_in_window"]
    name: str = Field(pattern=NAME)
    metric: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=1)
    window_s: float = Field(gt=0)
    at_least: float = 1.0

    def rule(self) -> Rule:
        return CountInWindow(self.name, self.metric, self.kind, self.count, self.window_s, self.at_least)


RuleSpec = Annotated[ThresholdSpec | DurationSpec | RateOfChangeSpec | CountInWindowSpec, Field(discriminator="type")]


class DeviceProfile(_Strict):
    """The rules of one kind of device, and the heartbeat rule: offline after ``missed_heartbeats`` silent periods
    (``heartbeat_s`` of each device) unless the device sets ``offline_after_s`` itself."""

    rules: list[RuleSpec] = Field(default_factory=list)
    missed_heartbeats: int = Field(3, ge=1, le=1000)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> "DeviceProfile":
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique within a profile: {', '.join(dupes)}")
        return self

    def compiled(self) -> list[Rule]:
        return [spec.rule() for spec in self.rules]


def _spec(rule: Rule) -> dict:
    kinds = {Threshold: "threshold", Duration: "duration", RateOfChange: "rate_of_change", CountInWindow: "count_in_window"}
    return {"type": kinds[type(rule)], **{k: v for k, v in rule.__dict__.items()}}


def _as_data(sets: dict[str, list[Rule]]) -> dict[str, DeviceProfile]:
    return {name: DeviceProfile.model_validate({"rules": [_spec(r) for r in rules]}) for name, rules in sets.items()}


def shipped_profiles() -> dict[str, DeviceProfile]:
    """The shipped defaults: the built-in rule sets of detectors.sensor_profiles, as data."""
    return _as_data(SHIPPED)


def merged_profiles(configured: dict[str, DeviceProfile] | None) -> dict[str, DeviceProfile]:
    """Shipped defaults with the deployment's profiles over them (same name: replaced)."""
    return {**shipped_profiles(), **(configured or {})}


class ProfileBook:
    """The live profiles of one process; ``version`` changes with every edit so rule states are rebuilt."""

    def __init__(self, profiles: dict[str, DeviceProfile] | None = None) -> None:
        self._lock = threading.Lock()
        # the deployment's over the shipped ones and any a plugin registered in code (register_profile)
        self._profiles = {**_as_data(PROFILES), **merged_profiles(profiles)}
        self._compiled = {name: p.compiled() for name, p in self._profiles.items()}
        self.version = 0

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._profiles)

    def get(self, name: str) -> DeviceProfile | None:
        with self._lock:
            return self._profiles.get(name)

    def put(self, name: str, profile: DeviceProfile) -> None:
        """Add or replace a profile; devices using it get its rules at their next reading or tick."""
        compiled = profile.compiled()
        with self._lock:
            self._profiles[name] = profile
            self._compiled[name] = compiled
            self.version += 1

    def name_for(self, profile: str | None, device_type: str) -> str:
        """The profile a device uses: its named profile, else its type's, else ``generic``."""
        with self._lock:
            if profile is not None:
                if profile not in self._profiles:
                    raise KeyError(f"unknown device profile {profile!r}")
                return profile
            return device_type if device_type in self._profiles else "generic"

    def rules_for(self, profile: str | None, device_type: str) -> list[Rule]:
        name = self.name_for(profile, device_type)
        with self._lock:
            return self._compiled.get(name, [])

    def missed_heartbeats(self, profile: str | None, device_type: str) -> int:
        name = self.name_for(profile, device_type)
        with self._lock:
            found = self._profiles.get(name)
        return found.missed_heartbeats if found is not None else 3
