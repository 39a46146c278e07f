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
    for note in dep.deprecations:
        print(note)
    print(f"{args.path}: OK — {dep.name}: {len(dep.cameras)} cameras, {len(dep.devices)} devices, {len(dep.gateway.users)} users")
    return 0


def _run(args: argparse.Namespace) -> int:
    from gateway.runtime import parse_roles, serve

    try:
        dep = load_deployment(args.config)
        roles = parse_roles(args.roles)
        partition = None
        if args.devices_partition:
            from ingest.devices.role import Partition

            partition = Partition.parse(args.devices_partition)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"gridwatch run: {exc}", file=sys.stderr)
        return 2
    if args.worker_id:  # the video pool's member id (detectors.pool_member); children inherit it
        os.environ["GRIDWATCH_WORKER_ID"] = args.worker_id
    if not args.child:  # the supervisor says it once, not every role process
        for note in dep.deprecations:
            print(f"warning: {note}", file=sys.stderr)
    if args.port:
        dep.gateway.port = args.port
    if args.host:
        dep.gateway.host = args.host
    if args.child or args.one_process or len(roles) == 1:
        if args.child:
            _title(f"gridwatch-{'+'.join(roles)}" + (f"-{partition.index}of{partition.count}" if partition else ""))
        from detectors.pool_store import WorkerIdTaken

        try:
            return serve(dep, roles, video_workers=args.video_workers, devices_partition=partition, services=not args.child,
                         health_port=args.health_port, health_host=args.health_host, announce=not args.child)
        except WorkerIdTaken as exc:  # the video pool refused a second process with this worker id
            print(f"gridwatch run: {exc}", file=sys.stderr)
            return 2
    from gateway.supervisor import supervise

    from gateway.local_services import ServiceError

    _title("gridwatch-supervisor")
    try:
        return supervise(dep, Path(args.config or DEMO_CONFIG).resolve(), roles, port=args.port, host=args.host,
                         video_workers=args.video_workers, devices_processes=args.devices_processes, verbose=args.verbose)
    except ServiceError as exc:  # a service that does not answer: one line an operator can act on, not a traceback
        print(f"gridwatch run: {exc}", file=sys.stderr)
        return 1


def _probe(args: argparse.Namespace) -> int:
    """An exec probe over the HTTP one (compose health checks; images without curl): exit 0 when it answers 200."""
    import httpx

    path = "/readyz" if args.ready else "/healthz"
    try:
        answer = httpx.get(f"http://{args.host}:{args.port}{path}", timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"{path}: no answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(f"{path}: {answer.status_code} {answer.text}")
    return 0 if answer.status_code == 200 else 1


def _title(name: str) -> None:
    """Name the process for ps/top (``setproctitle`` when installed; the argv names the role anyway)."""
    try:
        import setproctitle  # type: ignore[import-not-found]

        setproctitle.setproctitle(name)
    except ImportError:
        pass


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

    run = sub.add_parser("run", help="run GridWatch's roles: a supervisor with each role a child process, or one role here "
                                      "(the demo district when no --config)")
    run.add_argument("--config", type=Path, default=None, help=f"deployment file (default: {DEMO_CONFIG})")
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--host", default=None)
    run.add_argument("--roles", default=None, metavar="LIST",
                     help="comma-separated subset of api,intake,sla,notify,devices,video (default: all). One role runs in this "
                          "process; several run as supervised child processes")
    run.add_argument("--one-process", action="store_true", help="run the roles in this one process (no supervisor)")
    run.add_argument("--video-workers", type=int, default=None, metavar="N",
                     help="video analysis worker processes with shared-memory frames and one detector process (0: all cameras "
                          "in the video role's own process; default: one per core)")
    run.add_argument("--devices-processes", type=int, default=1, metavar="N",
                     help="supervisor: run N devices processes, each ingesting its partition of the devices")
    run.add_argument("--devices-partition", default=None, metavar="I/N",
                     help="this devices process ingests partition I of N (devices split by a hash of their id)")
    run.add_argument("--worker-id", default=None, metavar="ID",
                     help="this video role's id in the video pool (detection.pool.enabled; default: host-pid, or "
                          "GRIDWATCH_WORKER_ID). A second live process with the same id is refused")
    run.add_argument("--health-port", type=int, default=None, metavar="PORT",
                     help="one-role process: answer /healthz (live) and /readyz (ready) on this port (Kubernetes probes)")
    run.add_argument("--health-host", default="0.0.0.0", metavar="ADDR", help="address of the probe port (default: all)")
    run.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # started by the supervisor
    run.set_defaults(func=_run)

    probe = sub.add_parser("probe", help="ask a role process's probe port: exit 0 when live (or ready, with --ready)")
    probe.add_argument("--port", type=int, required=True)
    probe.add_argument("--host", default="127.0.0.1")
    probe.add_argument("--ready", action="store_true", help="readiness (/readyz) instead of liveness (/healthz)")
    probe.add_argument("--timeout", type=float, default=3.0)
    probe.set_defaults(func=_probe)

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


class _Chatter(logging.Filter):
    """Library lines that say nothing to an operator, repeated by every process: shown with -v only."""

    PREFIXES = ("setup plugin ", "Context impl ", "Will assume ")  # alembic, per process and per migration check

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.PREFIXES)


def quiet_libraries(verbose: bool) -> None:
    """Start-up says what matters (#19.7): alembic's setup lines and ultralytics' model-loading lines (one
    per model copy in every worker) go to debug. Environment, so the role and worker processes inherit it."""
    if verbose:
        return
    os.environ.setdefault("YOLO_VERBOSE", "False")  # ultralytics logs warnings and errors only
    for name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(name).addFilter(_Chatter())


def main(argv: list[str] | None = None) -> int:
    # Models come from local files: ultralytics must never try to download weights or install packages.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
