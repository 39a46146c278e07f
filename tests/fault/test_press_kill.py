"""A real ``gridwatch run`` SIGKILLed at each step of filing a burst of one-key alarms, then restarted.

The fail point (ingest/failpoints.py, ``GRIDWATCH_FAILPOINT``) kills the process inside the write:
after a press is queued on the press stream and before it is answered; after the filer took a batch
(its lease) and before filing; after the case store committed and before the case was recorded in the
ledger; after the ledger and before the XACK and the answer. The boxes (real MQTT clients on the real
broker) keep retrying the presses they got no answer for, re-signed with the same press id, as a
set-top box does. After a restart without the fail point every press must have been answered with a
case number, each press must be exactly one occurrence (no alarm lost, none filed twice), the number
each box was told must be the ticket that occurrence is on, and a retry over HTTPS gets that number too.

Redis is the test's own, at the durability ``gridwatch run`` gives its own Redis (AOF, everysec).
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import pytest

from ingest.devices import signed_headers
from ingest.simulator import BoxFleet, simulated_devices
from tests.fault.support import GridwatchProcess, free_port, report, write_deployment

pytestmark = pytest.mark.timeout(150)

MQTT_URL = "mqtt://127.0.0.1:1883"
N = 120

# point@n: the n-th time the point is reached (per press for the enqueue, per batch for the filer's points)
POINTS = ["press.after_enqueue@30", "press.after_claim@2", "press.after_commit@2", "press.after_ledger@2"]


def _filed(db: str) -> dict[str, list[str]]:
    """press id → the case numbers of its occurrences (exactly one when nothing was lost or duplicated)."""
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT o.details, t.number FROM occurrences o JOIN tickets t ON t.id = o.ticket_id "
                         "WHERE o.source_kind = 'alarm'").fetchall()
    out: dict[str, list[str]] = {}
    for details, number in rows:
        out.setdefault(json.loads(details)["press_id"], []).append(number)
    return out


@pytest.mark.parametrize("point", POINTS)
def test_killed_while_filing_presses_every_press_is_filed_once_and_retries_get_their_case(point, own_redis, tmp_path):
    boxes = simulated_devices(0, N, seed=f"kill-{uuid.uuid4().hex[:6]}", spread_deg=0.01)
    port = free_port()
    config = write_deployment(tmp_path, redis_url=own_redis.url, mqtt_url=MQTT_URL, port=port, devices=boxes)
    topic_prefix = __import__("yaml").safe_load(config.read_text(encoding="utf-8"))["ingest"]["mqtt"]["topic_prefix"]
    first = GridwatchProcess(config, port, tmp_path / "first.log", failpoint=point).start()
    second = GridwatchProcess(config, port, tmp_path / "second.log")
    fleet = BoxFleet(MQTT_URL, boxes, topic_prefix=topic_prefix, connections=4, ack_timeout_s=2.0)
    fleet.start()
    try:
        records = [fleet.press(b.id, f"press-{i}") for i, b in enumerate(boxes)]
        code = first.wait_killed(60)
        assert code == -9, f"gridwatch run ended with {code}, not by its fail point: {first.log_tail()}"
        answered_before = sum(1 for r in records if r.case)
        killed_at = time.monotonic()
        second.start()
        result = fleet.wait(deadline_s=60, retries=30)
        recovered_s = time.monotonic() - killed_at
        assert result.acked == N, (result.statuses, second.log_tail())
        filed = _filed(str(tmp_path / "gridwatch.db"))
        lost = [r.press_id for r in records if r.press_id not in filed]
        twice = {p: cases for p, cases in filed.items() if len(cases) > 1}
        wrong = [(r.press_id, r.case, filed.get(r.press_id)) for r in records if filed.get(r.press_id) != [r.case]]
        # the box's own retry over HTTPS (fresh signature, same press id) is answered with the same case
        retry = records[len(records) // 2]
        box = next(b for b in boxes if b.id == retry.device_id)
        body = json.dumps({"device": box.id, "press_id": retry.press_id, "kind": "press", "at": time.time()}).encode()
        over_https = httpx.post(f"{second.url}/api/v1/alarms/press", content=body,
                                headers=signed_headers(box.id, box.secret, body), timeout=10).json()
        report(f"kill at {point}", presses=N, answered_before_kill=answered_before, lost=len(lost),
               duplicated=len(twice), wrong_case=len(wrong), recovered_s=round(recovered_s, 1),
               retries=sum(r.attempts - 1 for r in records))
        assert lost == [] and twice == {} and wrong == []
        assert (over_https["status"], over_https["case"]) == ("duplicate", retry.case)
    finally:
        fleet.stop()
        first.stop()
        second.stop()
