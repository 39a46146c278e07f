"""Assemble the human channels over the parts a GridWatch process already has.

``build_channels(deployment, store=..., grids=..., redis_client=..., keys=..., evidence_dir=..., secret=...)``
returns a ``Channels`` bundle: the ChannelService (filing, following, rating), the OTP login, resident
tokens, and the ReporterNotifier whose ``run_forever(stop)`` the runtime starts as one more loop.
It builds its own Intake and CaseService over the same store and streams, with the deployment's
categories plus the local report categories (``effective_alerts_config``), so a report's category has its
deadlines even before the deployment file lists it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from alerts.channels.categories import Catalog, effective_alerts_config, load_catalog
from alerts.channels.classifier import SEED_FILE, ReportClassifier, load_examples
from alerts.channels.config import ChannelsConfig
from alerts.channels.masking import install_log_masking
from alerts.channels.notify import ReporterNotifier
from alerts.channels.otp import OtpService, ResidentTokens
from alerts.channels.places import Gazetteer
from alerts.channels.service import ChannelService
from alerts.channels.sms import SmsGateway, WeChatWebhook, build_sms, build_wechat
from alerts.config import AlertsConfig
from alerts.grids import GridIndex
from alerts.intake import Intake, utcnow
from alerts.service import CaseService
from alerts.store import Store
from alerts.streams import StreamKeys


@dataclass
class Channels:
    service: ChannelService
    otp: OtpService
    tokens: ResidentTokens
    notifier: ReporterNotifier
    sms: SmsGateway
    wechat: WeChatWebhook | None
    catalog: Catalog
    cfg: ChannelsConfig
    alerts_cfg: AlertsConfig


def build_channels(deployment: Any, *, store: Store, grids: GridIndex, redis_client: redis.Redis, keys: StreamKeys,
                   evidence_dir: Path, secret: str, cfg: ChannelsConfig | None = None, sms: SmsGateway | None = None,
                   clock=utcnow, consumer: str | None = None) -> Channels:
    """Everything the reports API and the notifier loop need. ``deployment`` is a ``gateway.config.Deployment``."""
    install_log_masking()
    cfg = cfg or getattr(deployment, "channels", None) or ChannelsConfig()
    catalog = load_catalog(deployment.resolve(cfg.categories_file), deployment.alerts)
    alerts_cfg = effective_alerts_config(deployment.alerts, catalog)
    consumer = consumer or f"{os.uname().nodename}-{os.getpid()}-channels"
    intake = Intake(store, grids, alerts_cfg, redis_client, keys, consumer=consumer, clock=clock)
    cases = CaseService(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    seed = load_examples(deployment.resolve(cfg.seed_file) if cfg.seed_file else SEED_FILE)
    classifier = ReportClassifier(catalog)
    gazetteer = Gazetteer.load(deployment.resolve(cfg.places_file), deployment.devices)
    service = ChannelService(store=store, grids=grids, alerts_cfg=alerts_cfg, redis_client=redis_client, keys=keys,
                             intake=intake, cases=cases, catalog=catalog, classifier=classifier, cfg=cfg,
                             evidence_dir=evidence_dir, gazetteer=gazetteer, seed=seed, clock=clock)
    service.retrain()
    sms = sms or build_sms(cfg.sms, deployment.run_dir)
    wechat = build_wechat(cfg.wechat)
    otp = OtpService(redis_client, keys.prefix, cfg, sms, secret)
    tokens = ResidentTokens(secret, cfg.resident_token_ttl_s, redis_client, keys.prefix)
    notifier = ReporterNotifier(service, sms, wechat, consumer=consumer)
    return Channels(service, otp, tokens, notifier, sms, wechat, catalog, cfg, alerts_cfg)


def channels_for_runtime(runtime: Any, secret: str) -> Channels:
    """The bundle over a ``gateway.runtime.Runtime`` (its store, grids, Redis, keys and evidence folder)."""
    return build_channels(runtime.deployment, store=runtime.store, grids=runtime.grids, redis_client=runtime.redis,
                          keys=runtime.keys, evidence_dir=runtime.evidence_dir, secret=secret)
