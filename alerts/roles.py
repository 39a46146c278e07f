"""The alerts roles — intake, SLA and notify — and the alarm filer the devices role runs.

Each role is a few loops over Redis consumer groups and the SQL store; it holds nothing another
process needs, so any of them can run in its own process (``gridwatch run --roles intake``) or beside
the others. A role is started and stopped as one: ``start()`` spawns its loops, ``stop()`` joins them.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


class Role(Protocol):
    """What the composer (``gateway.runtime``) starts and stops; ``status()`` is shown in /api/v1/status."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool:
        """Every loop of the role still runs (the liveness probe, ``gateway.probes``)."""
        ...

    def status(self) -> dict[str, Any]: ...


class LoopRole:
    """A role made of background loops, each ``fn(stop_event)`` until the event is set."""

    def __init__(self, name: str, loops: list[tuple[str, Loop]], on_stop: Callable[[], None] | None = None):
        self.name = name
        self.loops = loops
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, fn in self.loops:
            thread = threading.Thread(target=self._guard, args=(name, fn), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _guard(self, name: str, fn: Loop) -> None:
        try:
            fn(self._stop)
        except Exception:  # a dead loop must be seen; the supervisor restarts the process on exit
            log.exception("%s loop of role %s died", name, self.name)
            raise

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._on_stop is not None:
            self._on_stop()

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def status(self) -> dict[str, Any]:
        return {"loops": {t.name: t.is_alive() for t in self._threads}}


def intake_role(intake: Any) -> LoopRole:
    """Anomaly stream → merged, routed tickets (consumer group ``intake``; entries acknowledged once stored)."""
    return LoopRole("intake", [("intake", intake.run_forever)])


def sla_role(escalator: Any, early_warning: Any = None, activity_pruner: Any = None) -> LoopRole:
    """Deadlines and escalation of open tickets; the early-warning rule on its clock (``alerts.analysis.EarlyWarningScan``);
    activity retention on its clock (``alerts.activity_retention.ActivityPruner``)."""
    loops = [("escalation", escalator.run_forever)]
    if early_warning is not None and early_warning.cfg.scan_interval_s > 0:
        loops.append(("early-warning", early_warning.run_forever))
    if activity_pruner is not None and activity_pruner.cfg.prune_interval_s > 0:
        loops.append(("activity-retention", activity_pruner.run_forever))
    return LoopRole("sla", loops)


def notify_role(notifier: Any, reporter_notifier: Any, on_stop: Callable[[], None] | None = None) -> LoopRole:
    """Ticket events → webhooks / MQTT per grid, and news to the residents who reported."""
    return LoopRole("notify", [("notify", notifier.run_forever), ("notify-reporters", reporter_notifier.run_forever)],
                    on_stop=on_stop)


class AlarmFiler:
    """Files verified one-key alarm presses: new cases (with nearby snapshots) in one transaction, or 误按 cancels.

    ``file_alarms`` is the callable the devices role runs (MQTT presses, and the press stream's
    consumer); it answers each press with its case number or the exception that refused it.
    """

    def __init__(self, intake: Any, cases: Any, device: Callable[[str], Any],
                 snapshots_near: Callable[[list[Any]], list[list[Any]]]):
        self.intake, self.cases, self.device, self.snapshots_near = intake, cases, device, snapshots_near

    def file_alarms(self, presses: list[Any]) -> list[str | BaseException]:
        """File verified presses in one transaction; each gets its case number (the box's acknowledgement)."""
        from detectors.sensor_rules import alarm_anomaly

        numbers: list[str | BaseException | None] = [None] * len(presses)
        new = [i for i, p in enumerate(presses) if not (p.kind == "cancel" and p.case)]
        for i in set(range(len(presses))) - set(new):
            numbers[i] = self.cancel(presses[i])
        devices = [self.device(presses[i].device_id) for i in new]
        snapshots = self.snapshots_near([d.location for d in devices])
        anomalies = [alarm_anomaly(presses[i], d, snaps) for i, d, snaps in zip(new, devices, snapshots)]
        for i, ref in zip(new, self.intake.file_many(anomalies, return_exceptions=True)):
            numbers[i] = ref if isinstance(ref, BaseException) else ref.number
        return numbers  # type: ignore[return-value]

    def file_alarm(self, press: Any) -> str:
        result = self.file_alarms([press])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def cancel(self, press: Any) -> str:
        """误按: the resident cancels; the case is voided with the reason, unless someone already acted on it."""
        from alerts.lifecycle import TransitionError

        try:
            self.cases.transition(press.case, "void", f"device:{press.device_id}",
                                  note=f"误按 (resident cancelled): {press.reason or ''}".strip(), role="system")
        except TransitionError as exc:
            log.info("cancel of %s by %s not applied: %s", press.case, press.device_id, exc)
        return press.case
