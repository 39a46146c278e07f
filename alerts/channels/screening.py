"""Screening of free text and floods before anything is filed: empty, too short, abusive, too many from one number.

Refusals are ``ReportError`` with a message the reporter can act on and an HTTP-ish status; nothing
that passes is ever dropped. The flood limit counts per phone number in Redis, so every process of a
deployment shares it.
"""
from __future__ import annotations

import re
import unicodedata

import redis

# Insults and obscenities that make a report unusable as written (the reporter is asked to rephrase).
ABUSIVE = ("傻逼", "傻B", "煞笔", "沙比", "操你", "草你妈", "艹你", "你妈的", "他妈的", "尼玛", "狗日", "去死", "滚蛋",
           "王八蛋", "贱人", "婊子", "废物东西", "脑残", "fuck", "shit")


class ReportError(ValueError):
    """A report (or a step on it) that is refused; ``status`` 4xx, ``field`` names the input at fault."""

    def __init__(self, message: str, status: int = 422, field: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.field, self.retry_after = status, field, retry_after


def clean_text(text: str | None, *, min_chars: int = 4, max_chars: int = 2000, field: str = "text") -> str:
    """Normalised text, or ReportError when empty, too short, too long or abusive."""
    s = unicodedata.normalize("NFKC", text or "")
    s = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", s).strip()
    meaningful = re.sub(r"[\s\W_]+", "", s)
    if not meaningful:
        raise ReportError("请描述您要反映的问题（内容不能为空）", field=field)
    if len(meaningful) < min_chars:
        raise ReportError(f"描述太短，请至少写{min_chars}个字，说明发生了什么、在哪里", field=field)
    if len(s) > max_chars:
        raise ReportError(f"描述太长（{len(s)}字，上限{max_chars}字）", field=field)
    low = s.lower().replace(" ", "")
    if any(w.lower() in low for w in ABUSIVE):
        raise ReportError("内容含有不文明用语，请修改后再提交", field=field)
    if re.fullmatch(r"(.)\1{7,}", meaningful):
        raise ReportError("内容无法识别，请用文字描述问题", field=field)
    return s


class FloodGuard:
    """At most ``per_hour`` and ``per_day`` reports per phone number (fixed windows in Redis)."""

    def __init__(self, client: redis.Redis, prefix: str, per_hour: int, per_day: int):
        self.redis, self.prefix, self.per_hour, self.per_day = client, prefix, per_hour, per_day

    def check(self, phone: str) -> None:
        """Count one report for ``phone``; ReportError 429 when over either limit (the count is given back)."""
        for window, limit, label in ((3600, self.per_hour, "1小时"), (86400, self.per_day, "24小时")):
            key = f"{self.prefix}:chan:flood:{window}:{phone}"
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            n = pipe.execute()[0]
            if n > limit:
                self.redis.decr(key)
                ttl = max(1, int(self.redis.ttl(key)))
                raise ReportError(f"同一号码{label}内最多提交{limit}条反映，请稍后再试；紧急情况请直接拨打110/119/120",
                                  status=429, retry_after=ttl)
