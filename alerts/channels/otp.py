"""Resident login: a one-time code sent by SMS, then a resident token (JWT, ``typ=resident``).

Codes live in Redis (shared by every process of a deployment) as a salted hash with a TTL and an
attempt counter; a number may ask for a new code once per ``otp_resend_s`` and one client address
only so many times an hour, so the SMS gateway cannot be used to flood strangers' phones.
The resident token is signed with a key derived from the gateway's secret for this purpose only, so
it can never pass as a staff token (and a staff token never as a resident one).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
import redis

from alerts.channels.config import ChannelsConfig
from alerts.channels.masking import mask_phone, normalize_phone
from alerts.channels.sms import SmsGateway

log = logging.getLogger("alerts.channels")


class OtpError(ValueError):
    """A code request or check that is refused; ``retry_after`` is set when waiting helps."""

    def __init__(self, message: str, retry_after: int | None = None, status: int = 400):
        super().__init__(message)
        self.retry_after, self.status = retry_after, status


@dataclass(frozen=True)
class Resident:
    phone: str

    @property
    def masked(self) -> str:
        return mask_phone(self.phone)


def _digest(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


class OtpService:
    """Issue and check one-time login codes."""

    def __init__(self, client: redis.Redis, prefix: str, cfg: ChannelsConfig, sms: SmsGateway, secret: str):
        self.redis, self.prefix, self.cfg, self.sms = client, prefix, cfg, sms
        self._key = hashlib.sha256(b"gridwatch-otp:" + secret.encode()).digest()

    def _k(self, kind: str, ident: str) -> str:
        return f"{self.prefix}:chan:otp:{kind}:{_digest(self._key, ident)[:32]}"

    def request(self, phone: str, client_ip: str = "unknown") -> int:
        """Send a code to ``phone``; returns seconds it stays valid. Raises OtpError (bad number, too soon, too many)."""
        phone = normalize_phone(phone)
        ip_key = self._k("ip", client_ip)
        n = self.redis.incr(ip_key)
        if n == 1:
            self.redis.expire(ip_key, 3600)
        if n > self.cfg.otp_per_ip_per_hour:
            raise OtpError("验证码请求过于频繁，请稍后再试", retry_after=max(1, int(self.redis.ttl(ip_key))), status=429)
        if self.cfg.otp_resend_s and not self.redis.set(self._k("resend", phone), b"1", ex=self.cfg.otp_resend_s, nx=True):
            wait = max(1, int(self.redis.ttl(self._k("resend", phone))))
            raise OtpError(f"验证码已发送，请{wait}秒后再试", retry_after=wait, status=429)
        code = "".join(secrets.choice("0123456789") for _ in range(self.cfg.otp_length))
        key = self._k("code", phone)
        self.redis.delete(key)
        self.redis.hset(key, mapping={"h": _digest(self._key, f"{phone}:{code}"), "tries": 0})
        self.redis.expire(key, self.cfg.otp_ttl_s)
        minutes = max(1, self.cfg.otp_ttl_s // 60)
        self.sms.send(phone, f"您的登录验证码为{code}，{minutes}分钟内有效。如非本人操作请忽略。", purpose="otp")
        log.info("otp sent to %s", mask_phone(phone))
        return self.cfg.otp_ttl_s

    def verify(self, phone: str, code: str) -> Resident:
        """Check a code (once: a right code is consumed); raises OtpError when wrong, expired or tried too often."""
        phone = normalize_phone(phone)
        key = self._k("code", phone)
        stored = self.redis.hget(key, "h")
        if stored is None:
            raise OtpError("验证码已过期或未发送，请重新获取", status=401)
        tries = self.redis.hincrby(key, "tries", 1)
        if tries > self.cfg.otp_max_attempts:
            self.redis.delete(key)
            raise OtpError("验证码错误次数过多，请重新获取", status=401)
        want = stored.decode() if isinstance(stored, bytes) else stored
        if not hmac.compare_digest(want, _digest(self._key, f"{phone}:{str(code).strip()}")):
            raise OtpError("验证码错误", status=401)
        self.redis.delete(key)
        return Resident(phone)


class ResidentTokens:
    """Signed, expiring resident sessions; revocable through Redis like staff tokens."""

    TYP = "resident"

    def __init__(self, secret: str, ttl_s: int, client: redis.Redis | None = None, prefix: str = "gw"):
        self._secret = hashlib.sha256(b"gridwatch-resident:" + secret.encode()).hexdigest()
        self.ttl, self.redis, self.prefix = ttl_s, client, prefix

    def issue(self, resident: Resident) -> str:
        now = int(time.time())
        claims = {"sub": resident.phone, "typ": self.TYP, "jti": uuid.uuid4().hex, "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Resident:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["sub", "exp", "typ", "jti"]})
        except jwt.ExpiredSignatureError:
            raise OtpError("登录已过期，请重新登录", status=401) from None
        except jwt.PyJWTError:
            raise OtpError("未登录或登录无效", status=401) from None
        if claims.get("typ") != self.TYP:
            raise OtpError("未登录或登录无效", status=401)
        if self.redis is not None and self.redis.exists(f"{self.prefix}:chan:revoked:{claims['jti']}"):
            raise OtpError("已退出登录，请重新登录", status=401)
        return Resident(str(claims["sub"]))

    def revoke(self, token: str) -> None:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return
        if self.redis is not None:
            ttl = max(1, int(claims.get("exp", 0) - time.time()) + 1)
            self.redis.set(f"{self.prefix}:chan:revoked:{claims.get('jti')}", b"1", ex=ttl)
