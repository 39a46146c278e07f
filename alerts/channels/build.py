"""Assemble the human channels over the case core a GridWatch process already has.

``build_channels(core, ChannelSetup.of(deployment, evidence_dir=..., secret=...))`` returns a ``Channels``
bundle: one part per channel (resident 报, patrol 采, hotline 收), the staff's view of reports, the
suggester, 回访 surveys, the OTP login and resident tokens, and the ReporterNotifier whose
``run_forever(stop)`` the notify role runs as one more loop. The core (``alerts.core.build_core``) is
built first, with the local report categories, so every filing and timing part sees the same ones;
the channels only receive it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from alerts.channels.categories import Catalog
from alerts.channels.classifier import SEED_FILE, ReportClassifier, load_examples
from alerts.channels.config import ChannelsConfig
from alerts.channels.filing import ReportFiling
from alerts.channels.hotline import HotlineChannel
from alerts.channels.masking import install_log_masking
from alerts.channels.merges import ReportMerges
from alerts.channels.otp import OtpService, ResidentTokens
from alerts.channels.patrol import PatrolChannel
from alerts.channels.places import Gazetteer
from alerts.channels.reporter_notifier import ReporterNotifier
from alerts.channels.resident import ResidentChannel
from alerts.channels.sms import SmsGateway, WeChatWebhook, build_sms, build_wechat
from alerts.channels.staff_reports import StaffReports
from alerts.channels.suggestions import Suggester
from alerts.channels.surveys import Surveys
from alerts.core import Core
from ingest.blobs import BlobStore


class ChannelDeployment(Protocol):
    """What the channels read of a deployment (``gateway.config.Deployment`` is one)."""

    @property
    def channels(self) -> ChannelsConfig: ...

    @property
    def devices(self) -> Sequence[Any]: ...   # each with id, location and optional household/address: known places

    @property
    def run_dir(self) -> Path: ...

    def resolve(self, relative: str) -> Path: ...


@dataclass(frozen=True)
class ChannelSetup:
    """The channels' settings and files, resolved; everything else they need comes with the core."""

    cfg: ChannelsConfig
    places_file: Path
    seed_file: Path
    run_dir: Path
    evidence_dir: "BlobStore | Path"
    secret: str
    devices: Sequence[Any] = ()

    @classmethod
    def of(cls, deployment: ChannelDeployment, *, evidence_dir: "BlobStore | Path", secret: str,
           cfg: ChannelsConfig | None = None) -> "ChannelSetup":
        cfg = cfg or deployment.channels
        return cls(cfg=cfg, places_file=deployment.resolve(cfg.places_file),
                   seed_file=deployment.resolve(cfg.seed_file) if cfg.seed_file else SEED_FILE,
                   run_dir=deployment.run_dir, evidence_dir=evidence_dir, secret=secret,
                   devices=tuple(deployment.devices))


@dataclass
class Channels:
    core: Core
    resident: ResidentChannel
    patrol: PatrolChannel
    hotline: HotlineChannel
    staff: StaffReports
    suggester: Suggester
    surveys: Surveys
    gazetteer: Gazetteer
    otp: OtpService
    tokens: ResidentTokens
    notifier: ReporterNotifier
    sms: SmsGateway
    wechat: WeChatWebhook | None
    cfg: ChannelsConfig

    @property
    def catalog(self) -> Catalog:
        return self.core.catalog


def build_channels(core: Core, setup: ChannelSetup, *, sms: SmsGateway | None = None) -> Channels:
    """Everything the reports API and the notifier loop need, over ``core``'s intake, cases and categories."""
    install_log_masking()
    cfg, clock = setup.cfg, core.clock
    suggester = Suggester(core.parts.store, ReportClassifier(core.catalog), load_examples(setup.seed_file),
                          retrain_every=cfg.retrain_every, clock=clock)
    gazetteer = Gazetteer.load(setup.places_file, setup.devices)
    merges = ReportMerges(core)
    filing = ReportFiling(core, cfg, suggester, gazetteer, merges, setup.evidence_dir)
    surveys = Surveys(core.parts.store, core.cases, core.catalog, ttl_days=cfg.survey_ttl_days, clock=clock)
    resident = ResidentChannel(core, filing, surveys, setup.evidence_dir, max_text_chars=cfg.max_text_chars)
    sms = sms or build_sms(cfg.sms, setup.run_dir)
    wechat = build_wechat(cfg.wechat)
    redis_client, prefix = core.parts.redis, core.parts.keys.prefix
    notifier = ReporterNotifier(core, merges, surveys, sms, wechat, public_url=cfg.public_url,
                                consumer=core.consumer)
    return Channels(core=core, resident=resident, patrol=PatrolChannel(filing, core.cases, self_sign=cfg.patrol_self_sign),
                    hotline=HotlineChannel(filing), staff=StaffReports(core, suggester, filing.check_category),
                    suggester=suggester, surveys=surveys, gazetteer=gazetteer,
                    otp=OtpService(redis_client, prefix, cfg, sms, setup.secret),
                    tokens=ResidentTokens(setup.secret, cfg.resident_token_ttl_s, redis_client, prefix),
                    notifier=notifier, sms=sms, wechat=wechat, cfg=cfg)
