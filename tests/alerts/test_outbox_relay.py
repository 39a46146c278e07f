"""The transactional outbox on SQLite and PostgreSQL, against the real Redis: a commit whose publish never
happened is sent by another process's relay, exactly once whoever sends it, and a publish refused by Redis
is sent before the next one."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import redis
from sqlalchemy import func, select

from alerts.events import Effects
from alerts.models import OutboxEntry
from alerts.outbox import Outbox
from tests.alerts.helpers import anomaly


def _rows(store) -> int:  # noqa: ANN001
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxEntry))


def _event_tickets(client, keys) -> list[int]:  # noqa: ANN001
    return [int(f[b"ticket_id"]) for _, f in client.xrange(keys.events)]


def test_a_commit_whose_process_died_before_publishing_is_sent_once_by_another_relay(store, redis_client, keys):
    owner, other = Outbox(store, redis_client, keys), Outbox(store, redis_client, keys)
    now = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
    ticket = {"id": 7, "number": "QS20261124-000007", "grid_code": "330199001001001"}
    with store.write() as s:  # the change and what it owes Redis, in one transaction …
        pending = owner.stage(s, Effects(duty=[("330199001001001", ticket, "dispatched")],
                                         events=[("ticket.created", ticket, {})]), now)
    # … and the owner "dies" here: nothing reached Redis.
    assert _rows(store) == 1 and redis_client.xlen(keys.events) == 0
    assert other.relay(grace_s=60) == 0            # younger than the grace time: its owner may still send it
    assert other.relay(grace_s=0) == 1
    assert _event_tickets(redis_client, keys) == [7]
    duty = redis_client.xrange(keys.duty("330199001001001"))
    assert [int(f[b"ticket_id"]) for _, f in duty] == [7]
    assert redis_client.hget(f"{keys.duty('330199001001001')}:entries", "7").decode() == duty[0][0].decode()
    assert _rows(store) == 0
    # The owner was only slow, not dead: its own publish afterwards lands nothing a second time.
    owner.publish(pending)
    assert _event_tickets(redis_client, keys) == [7] and redis_client.xlen(keys.duty("330199001001001")) == 1


def test_a_row_sent_and_not_yet_deleted_is_not_sent_again(store, redis_client, keys):
    outbox = Outbox(store, redis_client, keys)
    ticket = {"id": 3, "number": "QS20261124-000003", "grid_code": "330199001001001"}
    with store.write() as s:
        pending = outbox.stage(s, Effects(events=[("ticket.sign", ticket, {})]), datetime.now(timezone.utc))
    outbox.publish(pending)                       # sent; its row is deleted by the next transaction or sweep
    assert _rows(store) == 1
    assert Outbox(store, redis_client, keys).relay(grace_s=0) == 0   # a relay elsewhere finds it: marker says sent
    assert _event_tickets(redis_client, keys) == [3] and _rows(store) == 0


def test_the_next_transaction_deletes_the_rows_its_outbox_sent(store, redis_client, keys):
    outbox = Outbox(store, redis_client, keys)
    for i in (1, 2, 3):
        with store.write() as s:
            pending = outbox.stage(s, Effects(events=[("ticket.comment", {"id": i}, {})]), datetime.now(timezone.utc))
        outbox.publish(pending)
    assert _rows(store) == 1                      # only the last one is left, for the next transaction or the relay
    assert _event_tickets(redis_client, keys) == [1, 2, 3]


def test_a_publish_refused_by_redis_is_sent_first_when_it_answers_again(store, redis_client, keys):
    outbox = Outbox(store, redis_client, keys)
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    outbox.redis = down
    with store.write() as s:
        first = outbox.stage(s, Effects(events=[("ticket.escalate", {"id": 1}, {})]), datetime.now(timezone.utc))
    with pytest.raises(redis.ConnectionError):
        outbox.publish(first)
    assert _rows(store) == 1                      # the row waits in SQL
    outbox.redis = redis_client
    with store.write() as s:
        second = outbox.stage(s, Effects(events=[("ticket.escalate", {"id": 2}, {})]), datetime.now(timezone.utc))
    outbox.publish(second)
    assert _event_tickets(redis_client, keys) == [1, 2]   # in commit order, each once


def test_intake_and_case_changes_write_their_outbox_row_in_the_same_transaction(intake, service, store, redis_client,
                                                                               keys):
    """A filed anomaly and a transition each leave their publication in the store until it is known sent."""
    ref = intake.file(anomaly())
    assert _rows(store) == 1
    service.transition(ref.ticket_id, "sign", "worker_qh1", role="grid_worker")
    assert _rows(store) == 2                      # each part deletes its own sent rows; the relay deletes the rest
    assert Outbox(store, redis_client, keys).relay(grace_s=0) == 0 and _rows(store) == 0
    types = [f[b"type"].decode() for _, f in redis_client.xrange(keys.events)]
    assert types == ["ticket.created", "ticket.sign"]
