"""One notifier process for the fault tests: ticket events → a webhook and MQTT, until SIGTERM (or SIGKILL).

    python tests/fault/notify_worker.py --redis URL --sql - --prefix P --consumer NAME --claim-idle S \
        --hook URL --mqtt-port 1883 --topic-prefix T

Exactly what ``gateway.runtime.Runtime`` runs in its notify thread (``Notifier.run_forever``), in a
process of its own so a test can kill it inside a delivery (``GRIDWATCH_FAILPOINT``).
"""
from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import paho.mqtt.client as mqtt  # noqa: E402
import redis  # noqa: E402

from alerts.config import WebhookConfig  # noqa: E402
from alerts.notify import Notifier  # noqa: E402
from alerts.streams import StreamKeys  # noqa: E402
from gateway.config import load_deployment  # noqa: E402
from tests.fault.worker_parts import parse_args, stop_on_sigterm  # noqa: E402


def _own_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hook", required=True)
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--topic-prefix", required=True)


def main() -> int:
    args = parse_args(_own_args)
    cfg = load_deployment().alerts.model_copy(update={
        "webhooks": [WebhookConfig(url=args.hook, secret="fault-hook-secret", timeout_s=2.0)],
        "mqtt_topic_prefix": args.topic_prefix})
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gwfault-notify-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", args.mqtt_port)
    client.loop_start()
    notifier = Notifier(cfg, redis.Redis.from_url(args.redis), StreamKeys(args.prefix), consumer=args.consumer,
                        mqtt=client, claim_idle_s=args.claim_idle)
    stop = stop_on_sigterm()
    print("notify worker ready", flush=True)
    notifier.run_forever(stop, block_ms=200)
    client.loop_stop()
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
