"""Rules over sensor readings, heartbeat loss, and the Anomaly of a one-key alarm.

:class:`SensorRuleEngine` keeps, per device and rule, the little state a rule needs (firing or not,
since when a condition holds, a window of recent values) and publishes an Anomaly on each change:
``state="firing"`` when a rule trips and ``state="cleared"`` when it recovers, so the case system can
close or annotate the ticket. Rules reason on the device's clock (``Reading.at``), so readings that
were queued by the broker while GridWatch restarted still give correct durations and rates;
``tick(now)`` converts wall time to each device's clock with the offset seen on its last reading.

The anomaly id is derived from device, rule, state and the device time of the reading that caused
it, so the same transition replayed (a redelivered message after a restart) files once.
State changes only after ``publish`` returned: if the stream is down, the next reading retries.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ingest.anomaly import Anomaly, Evidence
from detectors.sensor_profiles import TITLES, CountInWindow, Duration, RateOfChange, Rule, Threshold, rules_for

if TYPE_CHECKING:
    from detectors.device_profiles import ProfileBook
from ingest.devices.messages import AlarmPress, Reading
from ingest.devices.registry import Device, DeviceRegistry

_NS = uuid.UUID("6b2f1c1e-6d0f-4b0e-9a43-9f1d3c2f7a10")
DEFAULT_STATUS_GRACE_S = 60.0


def _anomaly_id(*parts: object) -> str:
    return uuid.uuid5(_NS, "|".join(str(p) for p in parts)).hex


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _title(kind: str, device: Device) -> str:
    return f"{TITLES.get(kind, kind)} · {device.name or device.household or device.address or device.id}"


class _RuleState:
    __slots__ = ("rule", "firing", "since", "window", "last_at")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.firing = False
        self.since: float | None = None  # Duration: device time the condition began
        self.window: deque[tuple[float, float]] = deque()  # RateOfChange (at, value) / CountInWindow (at, 1)
        self.last_at: float | None = None


class _DeviceState:
    __slots__ = ("profile_key", "by_metric", "states", "offset", "offline", "offline_since")

    def __init__(self, profile_key: tuple[str | None, str, int], rules: list[Rule]) -> None:
        self.profile_key = profile_key
        self.states = [_RuleState(r) for r in rules]
        self.by_metric: dict[str, list[_RuleState]] = {}
        for st in self.states:
            self.by_metric.setdefault(st.rule.metric, []).append(st)
        self.offset = 0.0  # receive time − device time of the last reading
        self.offline = False
        self.offline_since: float | None = None  # from a status message (last will)


class SensorRuleEngine:
    """Evaluate each device's profile on its readings; detect silent and disconnected devices."""

    def __init__(
        self,
        registry: DeviceRegistry,
        publish: Callable[[Anomaly], None],
        clock: Callable[[], float] = time.time,
        status_grace_s: float = DEFAULT_STATUS_GRACE_S,
        profiles: "ProfileBook | None" = None,
    ) -> None:
        """``profiles``: the live device profiles (the deployment's, editable at run time); without it the
        shipped rule sets of detectors.sensor_profiles."""
        self._registry = registry
        self.profiles = profiles
        self._publish = publish
        self._clock = clock
        self._status_grace_s = status_grace_s
        self._started = clock()
        self._lock = threading.Lock()
        self._devices: dict[str, _DeviceState] = {}
        self.published = 0

    # --------------------------------------------------------------------------------- plumbing
    def _state(self, device: Device) -> _DeviceState:
        book = self.profiles
        key = (device.profile, device.type, book.version if book is not None else 0)
        st = self._devices.get(device.id)
        if st is None or st.profile_key != key:
            rules = book.rules_for(device.profile, device.type) if book is not None else rules_for(device.profile, device.type)
            fresh = _DeviceState(key, rules)
            if st is not None:  # a profile edit: the device's connection state carries over, its rule states restart
                fresh.offset, fresh.offline, fresh.offline_since = st.offset, st.offline, st.offline_since
            st = self._devices[device.id] = fresh
        return st

    def _offline_after(self, device: Device) -> float:
        """Silence that makes a device offline: its own ``offline_after_s``, else its profile's missed heartbeats."""
        if device.offline_after_set or self.profiles is None:
            return device.offline_after_s
        return device.heartbeat_s * self.profiles.missed_heartbeats(device.profile, device.type)

    def _emit(self, device: Device, kind: str, rule: str, state: str, at: float, observed_at: float,
              details: dict[str, Any]) -> None:
        anomaly = Anomaly(
            id=_anomaly_id(device.id, rule, state, repr(at)),
            kind=kind, source="sensor", source_id=device.id, location=device.location,
            occurred_at=_utc(at), observed_at=observed_at, state=state,  # type: ignore[arg-type]
            title=_title(kind, device),
            details={"rule": rule, "device_type": device.type, "address": device.address,
                     "household": device.household, "device_time": at, **details},
        )
        self._publish(anomaly)
        self.published += 1

    # --------------------------------------------------------------------------------- readings
    def on_reading(self, reading: Reading) -> None:
        """Evaluate the rules on this reading's metric; publish each firing or clearing it causes."""
        device = self._registry.get(reading.device_id)
        if device is None:
            return
        with self._lock:
            st = self._state(device)
            st.offset = reading.received_at - reading.at
            if st.offline:
                self._emit(device, "device_offline", "heartbeat", "cleared", reading.at, reading.received_at,
                           {"back_at": reading.received_at})
                st.offline = False
            st.offline_since = None
            for rs in st.by_metric.get(reading.metric, ()):
                self._evaluate(device, rs, reading.value, reading.at, reading.received_at)

    def _evaluate(self, device: Device, rs: _RuleState, value: float, at: float, observed_at: float) -> None:
        rule = rs.rule
        if rs.last_at is not None and at < rs.last_at - 1e-6 and not isinstance(rule, Threshold):
            return  # an old reading delivered late: windows and durations only move forward
        rs.last_at = at if rs.last_at is None else max(rs.last_at, at)
        base = {"metric": rule.metric, "value": value}
        if isinstance(rule, Threshold):
            if rule.above is not None:
                trip, recover = value >= rule.above, value < (rule.clear if rule.clear is not None else rule.above)
                base["threshold"] = rule.above
            else:
                trip, recover = value <= rule.below, value > (rule.clear if rule.clear is not None else rule.below)  # type: ignore[operator]
                base["threshold"] = rule.below
            self._step(device, rs, trip, recover, at, observed_at, base)
        elif isinstance(rule, Duration):
            holds = value > rule.above if rule.above is not None else value < rule.below  # type: ignore[operator]
            if holds:
                if rs.since is None:
                    rs.since = at
                self._check_duration(device, rs, at, observed_at, value)
            else:
                if rs.firing:
                    self._emit(device, rule.kind, rule.name, "cleared", at, observed_at, base)
                    rs.firing = False
                rs.since = None
        elif isinstance(rule, RateOfChange):
            rs.window.append((at, value))
            while rs.window and rs.window[0][0] < at - rule.within_s:
                rs.window.popleft()
            oldest = min(v for _, v in rs.window) if rule.rise > 0 else max(v for _, v in rs.window)
            change = value - oldest
            details = {**base, "change": change, "within_s": rule.within_s}
            tripped = change >= rule.rise if rule.rise > 0 else change <= rule.rise
            calm = change < rule.rise / 2 if rule.rise > 0 else change > rule.rise / 2
            self._step(device, rs, tripped, calm, at, observed_at, details)
        elif isinstance(rule, CountInWindow):
            if value >= rule.at_least:
                rs.window.append((at, 1.0))
            self._check_count(device, rs, at, observed_at)

    def _step(self, device: Device, rs: _RuleState, trip: bool, recover: bool, at: float, observed_at: float,
              details: dict[str, Any]) -> None:
        """A rule's state change: a quiet rule that trips fires, a firing rule that recovers clears (hysteresis:
        the two conditions differ, so a value hovering at the threshold does not flap)."""
        if not rs.firing and trip:
            self._emit(device, rs.rule.kind, rs.rule.name, "firing", at, observed_at, details)
            rs.firing = True
        elif rs.firing and recover:
            self._emit(device, rs.rule.kind, rs.rule.name, "cleared", at, observed_at, details)
            rs.firing = False

    def _check_duration(self, device: Device, rs: _RuleState, device_now: float, observed_at: float, value: float | None) -> None:
        rule = rs.rule
        assert isinstance(rule, Duration)
        if not rs.firing and rs.since is not None and device_now - rs.since >= rule.for_s:
            self._emit(device, rule.kind, rule.name, "firing", device_now, observed_at,
                       {"metric": rule.metric, "value": value, "since": rs.since, "for_s": rule.for_s,
                        "threshold": rule.above if rule.above is not None else rule.below})
            rs.firing = True

    def _check_count(self, device: Device, rs: _RuleState, device_now: float, observed_at: float) -> None:
        rule = rs.rule
        assert isinstance(rule, CountInWindow)
        while rs.window and rs.window[0][0] < device_now - rule.window_s:
            rs.window.popleft()
        details = {"metric": rule.metric, "count": len(rs.window), "window_s": rule.window_s}
        self._step(device, rs, len(rs.window) >= rule.count, not rs.window, device_now, observed_at, details)

    # ------------------------------------------------------------------------------------- time
    def on_status(self, device_id: str, online: bool, at: float) -> None:
        """A status message: offline (the box's last will) starts the grace period, online ends it."""
        device = self._registry.get(device_id)
        if device is None:
            return
        with self._lock:
            st = self._state(device)
            if online:
                st.offline_since = None
                if st.offline:
                    self._emit(device, "device_offline", "heartbeat", "cleared", at, at, {"back_at": at})
                    st.offline = False
            elif st.offline_since is None:
                st.offline_since = at

    def tick(self, now: float | None = None) -> None:
        """Fire heartbeat loss (silence longer than ``offline_after_s``, or a last will older than the
        grace period) and duration/count rules whose time ran out without a new reading."""
        now = self._clock() if now is None else now
        with self._lock:
            known = set()
            for device in self._registry.all():
                known.add(device.id)
                st = self._state(device)
                device_now = now - st.offset
                for rs in st.states:
                    if isinstance(rs.rule, Duration) and rs.since is not None:
                        self._check_duration(device, rs, device_now, now, None)
                    elif isinstance(rs.rule, CountInWindow) and (rs.window or rs.firing):
                        self._check_count(device, rs, device_now, now)
                if st.offline:
                    continue
                reference = device.last_seen if device.last_seen is not None else self._started
                silent_for = now - reference
                by_status = st.offline_since is not None and now - st.offline_since >= self._status_grace_s
                offline_after = self._offline_after(device)
                if silent_for > offline_after or by_status:
                    self._emit(device, "device_offline", "heartbeat", "firing", reference, now,
                               {"last_seen": device.last_seen, "silent_s": round(silent_for, 1),
                                "offline_after_s": offline_after, "cause": "last_will" if by_status else "silence"})
                    st.offline = True
            for gone in set(self._devices) - known:
                del self._devices[gone]

    def firing(self) -> list[tuple[str, str]]:
        """(device id, rule name) of every rule now firing, offline devices as (id, 'heartbeat')."""
        with self._lock:
            out = [(d, rs.rule.name) for d, st in self._devices.items() for rs in st.states if rs.firing]
            out += [(d, "heartbeat") for d, st in self._devices.items() if st.offline]
        return out


def alarm_anomaly(press: AlarmPress, device: Device, snapshots: list[Evidence]) -> Anomaly:
    """The Anomaly of a one-key alarm press at the household's registered location (a cancel: ``cleared``).

    Its id derives from the device and press id, so filing the same press twice is one occurrence.
    """
    cancel = press.kind == "cancel"
    return Anomaly(
        id=_anomaly_id("alarm", device.id, press.press_id, press.kind),
        kind="one_key_alarm", source="alarm", source_id=device.id, location=device.location,
        occurred_at=_utc(press.at), observed_at=press.received_at,
        state="cleared" if cancel else "firing",
        title=_title("one_key_alarm", device) + (" (已取消)" if cancel else ""),
        evidence=list(snapshots),
        details={"press_id": press.press_id, "household": device.household, "address": device.address,
                 "device_type": device.type, "cancelled": cancel, "reason": press.reason, "case": press.case},
    )
