"""The ``gridwatch`` command: run the system, check a deployment file, print reports, simulate devices."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gateway.config import DEMO_CONFIG, ConfigError, load_deployment


def _check(args: argparse.Namespace) -> int:
    try:
        dep = load_deployment(args.path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.path}", file=sys.stderr)
        return 1
    print(f"{args.path}: OK — {dep.name}: {len(dep.cameras)} cameras, {len(dep.devices)} devices, {len(dep.gateway.users)} users")
    return 0


def _run(args: argparse.Namespace) -> int:
    from gateway.runtime import serve

    try:
        dep = load_deployment(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if args.port:
        dep.gateway.port = args.port
    if args.host:
        dep.gateway.host = args.host
    return serve(dep)


def _report(args: argparse.Namespace) -> int:
    from alerts.kpis import monthly_report
    from alerts.store import open_store

    dep = load_deployment(args.config)
    print(monthly_report(open_store(dep.sql_url), args.month, dep.alerts))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from ingest.simulator import main as simulate

    return simulate(args.rest) or 0


def _mqtt_acl(args: argparse.Namespace) -> int:
    from ingest.devices import DeviceRegistry, write_mosquitto_auth

    dep = load_deployment(args.config)
    mqtt = dep.ingest.mqtt
    service = {mqtt.username: mqtt.password} if mqtt.username and mqtt.password else None
    if service is None:
        print("note: ingest.mqtt.username/password are not set, so the broker gets no account for GridWatch's own ingest",
              file=sys.stderr)
    write_mosquitto_auth(DeviceRegistry(dep.devices), Path(args.passwd), Path(args.acl), topic_prefix=mqtt.topic_prefix,
                         service_users=service)
    print(f"wrote {args.passwd} and {args.acl}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridwatch", description="GridWatch: cameras, one-key alarms and sensors to routed, escalated grid tickets.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run every role in one process (the demo district when no --config)")
    run.add_argument("--config", type=Path, default=None, help=f"deployment file (default: {DEMO_CONFIG})")
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--host", default=None)
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="validate a deployment file; lists file:line: field: problem")
    check.add_argument("path", type=Path)
    check.set_defaults(func=_check)

    report = sub.add_parser("report", help="monthly KPI report")
    report.add_argument("--month", required=True, help="YYYY-MM")
    report.add_argument("--config", type=Path, default=None)
    report.set_defaults(func=_report)

    simulate = sub.add_parser("simulate", help="play sensors and set-top boxes against the broker and gateway", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=_simulate)

    acl = sub.add_parser("mqtt-acl", help="write a Mosquitto password file and ACL so each device publishes only under its own topic")
    acl.add_argument("--config", type=Path, default=None)
    acl.add_argument("--passwd", required=True)
    acl.add_argument("--acl", required=True)
    acl.set_defaults(func=_mqtt_acl)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Models come from local files: ultralytics must never try to download weights or install packages.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
