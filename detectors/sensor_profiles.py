"""Ready-made rule sets for the sensors grid management deploys, and the rule shapes they are built from.

A profile is a list of rules over named metrics; a device uses the profile named by its ``profile``
field, or else the one named like its ``type``. Every battery-powered profile also watches the
``battery`` metric (``low_battery``); every device is watched for silence (``device_offline``) by the
engine itself. Anomaly kinds match the categories of ``config/demo.yaml`` (0502 传感器告警, 0501 设备离线).

Metric names and units the built-in profiles expect (what the simulator sends):

=============  ===================  ==========================================================
profile        metric               fires
=============  ===================  ==========================================================
smoke          ``smoke`` %obs/m     ≥ 8 (clears < 4)                            smoke_alarm
gas            ``gas_lel`` %LEL     ≥ 20 (clears < 10), or +10 within 60 s      gas_leak
water_level    ``level_cm``         > 30 for 60 s, or +15 within 10 min         water_level
manhole_tilt   ``tilt_deg``         ≥ 15 (clears < 5)                           manhole_tilt
door           ``open`` 0/1         open for 120 s                              door_open
fence          ``breach`` 0/1,      a breach signal, or 3 vibrations in 30 s   fence_breach
               ``vibration`` 0/1
(all but STB)  ``battery`` %        ≤ 20 (clears > 30)                          low_battery
=============  ===================  ==========================================================
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    """Fires when the value reaches ``above`` (≥) or ``below`` (≤); clears only past ``clear`` (hysteresis)."""

    name: str
    metric: str
    kind: str
    above: float | None = None
    below: float | None = None
    clear: float | None = None

    def __post_init__(self) -> None:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.name}: give exactly one of above/below")


@dataclass(frozen=True)
class Duration:
    """Fires when the value stays above ``above`` (or below ``below``) for ``for_s`` seconds of device time."""

    name: str
    metric: str
    kind: str
    for_s: float
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.name}: give exactly one of above/below")


@dataclass(frozen=True)
class RateOfChange:
    """Fires when the value rose by ``rise`` (or fell by ``-rise`` when negative) within ``within_s``.

    Clears when the change over the window is back under half of it.
    """

    name: str
    metric: str
    kind: str
    rise: float
    within_s: float


@dataclass(frozen=True)
class CountInWindow:
    """Fires when at least ``count`` readings with value ≥ ``at_least`` fall within ``window_s``;
    clears when the window holds none."""

    name: str
    metric: str
    kind: str
    count: int
    window_s: float
    at_least: float = 1.0


Rule = Threshold | Duration | RateOfChange | CountInWindow

LOW_BATTERY = Threshold("low_battery", "battery", "low_battery", below=20.0, clear=30.0)

PROFILES: dict[str, list[Rule]] = {
    "smoke": [Threshold("smoke", "smoke", "smoke_alarm", above=8.0, clear=4.0), LOW_BATTERY],
    "gas": [
        Threshold("gas_high", "gas_lel", "gas_leak", above=20.0, clear=10.0),
        RateOfChange("gas_rising", "gas_lel", "gas_leak", rise=10.0, within_s=60.0),
        LOW_BATTERY,
    ],
    "water_level": [
        Duration("water_high", "level_cm", "water_level", for_s=60.0, above=30.0),
        RateOfChange("water_rising", "level_cm", "water_level", rise=15.0, within_s=600.0),
        LOW_BATTERY,
    ],
    "manhole_tilt": [Threshold("tilt", "tilt_deg", "manhole_tilt", above=15.0, clear=5.0), LOW_BATTERY],
    "door": [Duration("door_held_open", "open", "door_open", for_s=120.0, above=0.5), LOW_BATTERY],
    "fence": [
        Threshold("fence_breach", "breach", "fence_breach", above=1.0, clear=1.0),
        CountInWindow("fence_vibration", "vibration", "fence_breach", count=3, window_s=30.0),
        LOW_BATTERY,
    ],
    "set_top_box": [],
    "generic": [LOW_BATTERY],
}

# The built-in sets as shipped (register_profile adds to PROFILES, never here): the defaults of device_profiles.
SHIPPED: dict[str, list[Rule]] = {name: list(rules) for name, rules in PROFILES.items()}

TITLES = {
    "smoke_alarm": "烟感报警", "gas_leak": "燃气泄漏", "water_level": "水位超限", "manhole_tilt": "井盖倾斜/移位",
    "door_open": "门磁异常开启", "fence_breach": "电子围栏告警", "device_offline": "设备离线",
    "low_battery": "设备电量低", "one_key_alarm": "一键报警",
}


def register_profile(name: str, rules: list[Rule]) -> None:
    """Add or replace a profile (a vendor's sensor with its own metrics)."""
    PROFILES[name] = list(rules)


def rules_for(profile: str | None, device_type: str) -> list[Rule]:
    """The rules of a device: its named profile, else its type's, else the generic (battery only)."""
    if profile is not None:
        if profile not in PROFILES:
            raise KeyError(f"unknown sensor profile {profile!r}")
        return PROFILES[profile]
    return PROFILES.get(device_type, PROFILES["generic"])
