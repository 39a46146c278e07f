"""Kill points inside every write after the press: intake, sign-for on a duty queue, SLA escalation, notify.

Each test runs the real part in a process of its own (the same class ``gridwatch run`` runs in a
thread), arms one fail point (ingest/failpoints.py) so the process SIGKILLs itself in the middle of
the write under load, restarts it without the fail point, and checks what a user would: no alarm,
ticket, duty entry or notification lost, none duplicated. Redis is the test's own (AOF, everysec, as
``gridwatch run`` runs it); the store is a real SQLite file.
"""
from __future__ import annotations

import threading

import pytest
import redis

from alerts.streams import StreamKeys
from tests.fault.support import IntakeProcess, IntakeRig, Producer, case_workers, report, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("point", ["intake.after_commit@80", "intake.before_xack@80"])
def test_intake_killed_between_commit_and_queue_loses_and_duplicates_nothing(point, own_redis, prefix, tmp_path):
    """After the SQL commit and before the duty-queue XADD + XACK (one MULTI): the successor re-claims the entry,
    recognises the filed anomaly, and puts its dispatched ticket on the duty queue exactly once."""
    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmp_path / 'cases.db'}")
    total = 300
    first = IntakeProcess(own_redis.url, rig.sql_url, prefix, "intake-a", tmp_path / "a.log", failpoint=point)
    second = IntakeProcess(own_redis.url, rig.sql_url, prefix, "intake-b", tmp_path / "b.log")
    try:
        first.start()
        feeder = rig.feed(total, 400.0)
        assert first.wait_killed(60) == -9
        at_kill = rig.ledger()
        second.start()
        feeder.join(60)
        rig.wait_filed(60)
        rig.wait_drained(30)
        out = rig.ledger()
        report(f"kill at {point}", sent=out["sent"], filed_at_kill=at_kill["filed"],
               dispatched_without_duty_at_kill=len(at_kill["dispatched_without_duty_entry"]), lost=out["lost_count"],
               occurrence_dupes=out["occurrence_dupes"], duty_dupes=out["duty_dupes"],
               dispatched_without_duty=len(out["dispatched_without_duty_entry"]))
        assert at_kill["dispatched_without_duty_entry"] != []      # the kill really left a ticket off its queue …
        assert out["sent"] == total and out["lost_count"] == 0 and out["occurrence_dupes"] == 0
        assert out["tickets"] == total and out["duty_dupes"] == 0
        assert out["dispatched_without_duty_entry"] == []          # … and the successor repaired it, once
    finally:
        rig.stop_feed.set()
        first.stop()
        second.stop()
        rig.close()


@pytest.fixture
def webhook():
    """A webhook receiver that records the event id of every delivery it gets (repeats included)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                got.append(self.headers.get("X-GridWatch-Event", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # noqa: ANN002
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("point", ["notify.before_send@60", "notify.after_send@60"])
def test_notifier_killed_inside_a_delivery_loses_nothing_and_repeats_carry_the_event_id(point, own_redis, prefix,
                                                                                        tmp_path, webhook):
    """Killed after reading an event and before sending it, or after sending and before its XACK: the successor
    takes the event over and delivers it; every webhook and MQTT delivery names its event, so a repeat (at
    most the one in flight) is recognisable and nothing is delivered twice to a receiver that keeps ids."""
    import json
    import uuid

    import paho.mqtt.client as mqtt

    from alerts.events import Effects, publish

    url, hook_got = webhook
    keys = StreamKeys(prefix)
    client = redis.Redis.from_url(own_redis.url)
    topic_prefix = f"gwfault/{uuid.uuid4().hex[:8]}/tickets"
    mqtt_got: list[str] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gwfault-sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda c, u, m: mqtt_got.append(json.loads(m.payload).get("event_id", ""))
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"{topic_prefix}/#", qos=1)
    sub.loop_start()
    total = 200
    common = ["--hook", url, "--topic-prefix", topic_prefix]
    first = IntakeProcess(own_redis.url, "-", prefix, "notify-a", tmp_path / "a.log", failpoint=point,
                          script="notify_worker.py")
    second = IntakeProcess(own_redis.url, "-", prefix, "notify-b", tmp_path / "b.log", claim_idle_s=0.5,
                           script="notify_worker.py")
    first.args += common
    second.args += common
    try:
        wait_for(lambda: sub.is_connected(), 10, "MQTT subscriber connected")
        first.start()
        wait_for(lambda: "ready" in (tmp_path / "a.log").read_text(), 30, "first notifier ready")
        for i in range(total):
            ticket = {"id": i + 1, "number": f"QS-{i + 1:04d}", "grid_code": "330199001001001"}
            publish(client, keys, Effects(events=[("ticket.created", ticket, {})]))
        ids = {eid.decode() for eid, _ in client.xrange(keys.events)}
        assert first.wait_killed(60) == -9
        delivered_at_kill = len(set(hook_got))
        second.start()
        try:
            wait_for(lambda: set(hook_got) >= ids and set(mqtt_got) >= ids, 60, "every event delivered")
        except AssertionError:
            raise AssertionError(f"lost: webhook {len(ids - set(hook_got))}, mqtt {len(ids - set(mqtt_got))}; "
                                 f"{(tmp_path / 'b.log').read_text()[-1500:]}") from None
        wait_for(lambda: client.xpending(keys.events, "notify")["pending"] == 0, 30, "every event acknowledged")
        repeats = {"webhook": len(hook_got) - len(set(hook_got)), "mqtt": len(mqtt_got) - len(set(mqtt_got))}
        report(f"kill at {point}", events=total, delivered_at_kill=delivered_at_kill,
               webhook_lost=len(ids - set(hook_got)), mqtt_lost=len(ids - set(mqtt_got)),
               webhook_repeats=repeats["webhook"], mqtt_repeats=repeats["mqtt"])
        assert set(hook_got) == ids and set(mqtt_got) == ids          # nothing lost, nothing unnamed
        assert 0 < delivered_at_kill < total                          # killed in the middle of the load
        # at least once: only the delivery in flight at the kill may be repeated, and it carries its event id
        assert repeats["webhook"] <= (1 if point.startswith("notify.after_send") else 0)
        assert repeats["mqtt"] <= (1 if point.startswith("notify.after_send") else 0) + 1  # paho's QoS 1 resend
    finally:
        first.stop()
        second.stop()
        sub.loop_stop()
        sub.disconnect()
        client.close()


def _dispatched_tickets(rig: IntakeRig, n: int) -> list[int]:
    """``n`` camera tickets in grid 330199001001001, dispatched at once (no operator confirmation)."""
    refs = rig.intake("setup").file_many([rig.producer.anomaly(0, zone=f"z{i}", source_id=f"cam-setup-{i}") for i in range(n)])
    return [r.ticket_id for r in refs]


def _history(sql_url: str, action: str) -> dict[int, int]:
    """ticket id → how many history rows of ``action`` it has."""
    import sqlite3

    with sqlite3.connect(sql_url.removeprefix("sqlite:///")) as c:
        return dict(c.execute("SELECT ticket_id, count(*) FROM history WHERE action = ? GROUP BY ticket_id", (action,)))


def _events(client, keys: StreamKeys, etype: str) -> dict[int, int]:  # noqa: ANN001
    from collections import Counter

    return dict(Counter(int(f[b"ticket_id"]) for _, f in client.xrange(keys.events) if f[b"type"] == etype.encode()))


def _signer_run(point: str, own_redis, prefix: str, tmp_path, wait_events: bool = False) -> dict:  # noqa: ANN001
    """File 60 dispatched tickets, sign them through a duty-queue reader killed at ``point``, finish with a successor."""
    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmp_path / 'cases.db'}")
    sql, keys, client = rig.sql_url, rig.keys, rig.client
    total = 60
    tickets = _dispatched_tickets(rig, total)
    first, second = case_workers("signer", own_redis.url, sql, prefix, tmp_path, ("signer-a", "signer-b"), f"{point}@20",
                                 "--unit", "330199001001001", successor_claim_idle_s=0.5)
    duty = keys.duty("330199001001001")
    try:
        first.start()
        assert first.wait_killed(60) == -9
        signed_at_kill = len(_history(sql, "sign"))
        second.start()
        wait_for(lambda: len(_history(sql, "sign")) == total, 60, "every ticket signed for")
        wait_for(lambda: client.xpending(duty, "workers")["pending"] == 0, 30, "the duty queue acknowledged")
        if wait_events:
            wait_for(lambda: len(_events(client, keys, "ticket.sign")) == total, 30, "every sign event sent")
        signs, events = _history(sql, "sign"), _events(client, keys, "ticket.sign")
        report(f"kill at {point}", tickets=total, signed_at_kill=signed_at_kill,
               lost=len(set(tickets) - set(signs)), signed_twice=sum(1 for v in signs.values() if v > 1),
               sign_events=sum(events.values()))
        return {"tickets": tickets, "signed_at_kill": signed_at_kill, "signs": signs, "events": events}
    finally:
        first.stop()
        second.stop()
        rig.close()


@pytest.mark.parametrize("point", ["queue.after_sign", "case.after_commit"])
def test_signer_killed_inside_a_sign_for_signs_each_ticket_once_and_empties_the_queue(point, own_redis, prefix,
                                                                                       tmp_path):
    """A worker's duty-queue reader dies after the sign-for committed — before its event and duty XACK were
    published (case.after_commit), or before its own XACK (queue.after_sign): its successor takes the entry over,
    finds the ticket signed and acknowledges it. One sign-for per ticket, nothing left on the queue."""
    out = _signer_run(point, own_redis, prefix, tmp_path)
    assert 0 < out["signed_at_kill"] < len(out["tickets"])
    assert sorted(out["signs"]) == sorted(out["tickets"]) and set(out["signs"].values()) == {1}
    if point == "queue.after_sign":  # the event went out with the commit's effects
        assert sorted(out["events"]) == sorted(out["tickets"]) and set(out["events"].values()) == {1}


def test_a_sign_for_killed_after_its_commit_still_sends_its_event(own_redis, prefix, tmp_path):
    """F-CASE-1 (fixed by the outbox): the transition's event commits with it as an outbox row; the successor's
    relay sends the one the killed reader owed, once."""
    out = _signer_run("case.after_commit", own_redis, prefix, tmp_path, wait_events=True)
    assert sorted(out["events"]) == sorted(out["tickets"]), f"{len(out['tickets']) - len(out['events'])} sign events lost"
    assert set(out["events"].values()) == {1}, "a sign event was sent twice"


def test_escalator_killed_between_commit_and_publish_loses_no_duty_entry(own_redis, prefix, tmp_path):
    """F-SLA-1 (fixed by the outbox): a batch of escalations killed after its commit is on its new units' duty
    queues, each once, with its escalation notice, once the successor's relay sent the batch's outbox row."""
    from collections import Counter

    from sqlalchemy import select, update

    from alerts.models import Ticket
    from datetime import datetime, timedelta, timezone

    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmp_path / 'cases.db'}")
    sql, store, keys, client = rig.sql_url, rig.store, rig.keys, rig.client
    total = 30
    tickets = _dispatched_tickets(rig, total)
    with store.write() as s:  # every one overdue for sign-for: the escalator hands them up the chain
        s.execute(update(Ticket).values(escalate_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    first, second = case_workers("sla", own_redis.url, sql, prefix, tmp_path, ("sla-a", "sla-b"), "sla.after_commit")
    try:
        first.start()
        assert first.wait_killed(60) == -9
        second.start()
        wait_for(lambda: len(_history(sql, "escalate")) == total, 30, "every ticket escalated")
        with store.read() as s:
            units = {tid: unit for tid, unit in s.execute(select(Ticket.id, Ticket.unit_code))}
        assert set(units.values()) != {"330199001001001"}, "the tickets did not move up the chain"

        def entries() -> Counter:
            """ticket id → entries on the duty queue of the unit the ticket is in now (unacknowledged ones)."""
            on: Counter = Counter()
            for unit in set(units.values()):
                on.update(int(f[b"ticket_id"]) for _, f in client.xrange(keys.duty(unit)) if units[int(f[b"ticket_id"])] == unit)
            return on

        wait_for(lambda: set(entries()) >= set(tickets), 30, "every escalated ticket on its new unit's duty queue")
        wait_for(lambda: sorted(_events(client, keys, "ticket.escalate")) == sorted(tickets), 30, "every escalation notice")
        on_queue, escalations = entries(), _events(client, keys, "ticket.escalate")
        report("kill at sla.after_commit", tickets=total, off_queue=len(set(tickets) - set(on_queue)),
               queue_dupes=sum(1 for v in on_queue.values() if v > 1), escalate_events=sum(escalations.values()))
        assert set(tickets) <= set(on_queue), f"{len(set(tickets) - set(on_queue))} escalated tickets on no duty queue"
        assert set(on_queue.values()) == {1} and set(escalations.values()) == {1}  # each once
        assert sorted(escalations) == sorted(tickets)
        assert client.hlen(f"{keys.duty('330199001001001')}:entries") == 0  # the old unit's entries acknowledged
    finally:
        first.stop()
        second.stop()
        rig.close()
