"""Fixtures of the channel tests: a demo deployment in a temp dir, real Redis (unique prefix), SQLite store,
the channel parts with an SMS outbox, a running intake + notifier, and a minimal FastAPI app with the real
auth, tickets and reports routers (the full gateway app needs the video runtime; see the lead's create_app)."""
from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import wait_for  # noqa: F401  (the channel tests import it from here)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"



def jpeg_bytes(w: int = 320, h: int = 240, color=(200, 80, 40)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def deployment(tmp_path, stream_prefix):
    from alerts.channels.config import ChannelsConfig  # noqa: F401  (import check)
    from gateway.config import load_deployment

    dep = load_deployment(REPO / "config" / "demo.yaml")
    services = dep.services.model_copy(update={"run_dir": str(tmp_path / "run"), "stream_prefix": stream_prefix,
                                               "sql_url": f"sqlite:///{tmp_path}/run/gridwatch.db", "autostart": False})
    gateway = dep.gateway.model_copy(update={"bcrypt_rounds": 4, "secret_key": "channels-test-secret-" + stream_prefix})
    return dep.model_copy(update={"services": services, "gateway": gateway})


@pytest.fixture
def channel_cfg():
    from alerts.channels.config import ChannelsConfig

    return ChannelsConfig(otp_resend_s=1, reports_per_phone_per_hour=4, photo_max_bytes=600_000)


@pytest.fixture
def env(deployment, redis_client, stream_prefix, channel_cfg):
    """The channel parts over a real store and Redis, with intake and notifier loops running."""
    from alerts.channels.build import ChannelSetup, build_channels
    from alerts.core import CoreParts, build_core
    from alerts.grids import load_grid_file
    from alerts.store import open_store
    from alerts.streams import StreamKeys

    dep = deployment
    dep.run_dir.mkdir(parents=True, exist_ok=True)
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    store = open_store(dep.sql_url)
    store.sync_grids(grids)
    keys = StreamKeys(stream_prefix)
    evidence = dep.run_dir / "evidence"
    evidence.mkdir(parents=True, exist_ok=True)
    core = build_core(CoreParts(store, grids, redis_client, keys), dep.alerts, dep.resolve(channel_cfg.categories_file),
                      consumer="test-channels")
    ch = build_channels(core, ChannelSetup.of(dep, evidence_dir=evidence, secret=dep.gateway.secret_key, cfg=channel_cfg))
    rt = SimpleNamespace(deployment=dep, store=store, grids=grids, redis=redis_client, keys=keys, evidence_dir=evidence,
                         cases=core.cases, intake=core.intake, channels=ch)
    stop = threading.Event()
    threads = [threading.Thread(target=core.intake.run_forever, args=(stop, 200), daemon=True),
               threading.Thread(target=ch.notifier.run_forever, args=(stop, 200), daemon=True)]
    for t in threads:
        t.start()
    yield rt
    stop.set()
    for t in threads:
        t.join(timeout=5)
    store.close()


def make_app(rt) -> Any:
    from fastapi import FastAPI

    from gateway.api import auth as auth_api
    from gateway.api import reports, tickets
    from gateway.api.ratelimit import SharedLimit
    from gateway.audit import AuditLog
    from gateway.auth import Authenticator

    app = FastAPI()
    app.state.runtime = rt
    app.state.keys = rt.keys
    app.state.auth = Authenticator(rt.deployment, rt.grids, rt.redis, rt.keys.prefix)
    app.state.audit = AuditLog(rt.deployment.run_dir / "audit.jsonl")
    app.state.login_limit = SharedLimit(1000)
    for module in (auth_api, tickets, reports):
        app.include_router(module.router, prefix="/api/v1")
    reports.mount_pages(app)
    return app


@pytest.fixture
def app(env):
    return make_app(env)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def outbox(rt, phone: str | None = None) -> list[dict]:
    return rt.channels.sms.messages(phone)


def staff_token(client, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def resident_login(client, rt, phone: str) -> dict[str, str]:
    r = client.post("/api/v1/reports/public/otp", json={"phone": phone})
    assert r.status_code == 200, r.text
    msg = wait_for(lambda: [m for m in outbox(rt, phone) if m["purpose"] == "otp"], what="otp sms")[-1]
    code = re.search(r"验证码为(\d+)", msg["text"]).group(1)
    r = client.post("/api/v1/reports/public/login", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def labelled() -> list[dict]:
    return [json.loads(line) for line in (DATA / "labelled_reports.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
