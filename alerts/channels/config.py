"""Settings of the human channels (resident 报, patrol 采, hotline 收): limits, SMS and notification back-ends.

Everything has a default so the demo runs without a ``channels:`` section; the lead may mount this model
as ``Deployment.channels`` to make it configurable from the deployment file.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmsConfig(_Strict):
    """Where one-time codes and notifications go. ``outbox`` writes JSON lines (demo, tests); ``webhook`` POSTs."""

    backend: Literal["outbox", "webhook"] = "outbox"
    outbox_file: str = Field("sms_outbox.jsonl", description="relative to the run directory")
    webhook_url: str | None = None
    webhook_secret: str | None = Field(None, repr=False, description="HMAC-SHA256 key signing each POST; never logged")
    timeout_s: float = Field(5.0, gt=0)
    signature: str = Field("【清水区综治中心】", description="sign-name put in front of every SMS text")


class WeChatConfig(_Strict):
    """A WeChat-style (企业微信机器人 / 公众号 bridge) webhook told about each notification."""

    url: str
    secret: str | None = Field(None, repr=False)
    timeout_s: float = Field(5.0, gt=0)


class ChannelsConfig(_Strict):
    places_file: str = Field("places.yaml", description="address registry for hotline geocoding, relative to the deployment file")
    categories_file: str = Field("report_categories.yaml", description="local categories, keywords, hand-over; relative to the deployment file")
    seed_file: str | None = Field(None, description="labelled reports the classifier starts from (JSON lines); default: the packaged seed")
    sms: SmsConfig = SmsConfig()
    wechat: WeChatConfig | None = None
    otp_ttl_s: int = Field(300, gt=0)
    otp_length: int = Field(6, ge=4, le=8)
    otp_max_attempts: int = Field(5, ge=1)
    otp_resend_s: int = Field(60, ge=0, description="a number may ask for a new code once per this many seconds")
    otp_per_ip_per_hour: int = Field(30, ge=1)
    resident_token_ttl_s: int = Field(7 * 86400, gt=0)
    reports_per_phone_per_hour: int = Field(5, ge=1, description="flood limit on one number (resident and hotline callback)")
    reports_per_phone_per_day: int = Field(20, ge=1)
    min_text_chars: int = Field(4, ge=1)
    max_text_chars: int = Field(2000, ge=10)
    max_photos: int = Field(6, ge=0)
    photo_max_bytes: int = Field(4_000_000, gt=0)
    photo_max_pixels: int = Field(40_000_000, gt=0)
    photo_max_side: int = Field(2048, ge=256, description="photos are re-encoded (EXIF/GPS stripped) no larger than this")
    public_url: str = Field("http://127.0.0.1:8080", description="base of the links put in SMS (survey, follow-up)")
    survey_ttl_days: int = Field(15, gt=0)
    retrain_every: int = Field(1, ge=1, description="retrain the classifier after this many new dispatcher corrections")
    patrol_self_sign: bool = Field(True, description="a worker's own patrol report in their own grid is signed by them at once (自行处置)")
