"""Masking of personal data (phone numbers, names, ID numbers) for lists, logs and workers' views.

Residents' numbers and names are visible only to the roles that must call them back (dispatcher,
admin); everybody else, every log line and every ticket text sees ``138****1234`` and ``张*``.
"""
from __future__ import annotations

import logging
import re

MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")

# Roles that see residents' phone numbers and names in full.
UNMASKED_ROLES = frozenset({"dispatcher", "admin"})


def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits; raises ValueError with a message a resident understands."""
    digits = re.sub(r"[\s\-()]", "", str(raw or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise ValueError("请输入正确的11位手机号码")
    return digits


def mask_phone(phone: str | None) -> str:
    """``13812341234`` → ``138****1234``; landlines keep area code and last four digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11 and digits[-11] == "1":
        d = digits[-11:]
        return f"{d[:3]}****{d[-4:]}"
    if len(digits) >= 7:
        return f"{digits[:-8] if len(digits) > 8 else ''}****{digits[-4:]}"
    return "****"


def mask_name(name: str | None) -> str:
    """Keep the family name: ``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``, ``Li Lei`` → ``L*****``."""
    if not name:
        return ""
    name = name.strip()
    return name[0] + "*" * max(1, len(name) - 1)


def mask_text(text: str | None) -> str:
    """Free text with every phone number and ID-card number in it masked (a resident writes "请打13812341234")."""
    if not text:
        return ""
    text = ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)


def for_role(role: str | None, value: str | None, kind: str = "phone") -> str:
    """The value as ``role`` may see it."""
    if role in UNMASKED_ROLES:
        return value or ""
    return mask_phone(value) if kind == "phone" else mask_name(value) if kind == "name" else mask_text(value)


class MaskingFilter(logging.Filter):
    """A logging filter that masks phone and ID numbers in every record it passes (attach to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking(logger_name: str = "alerts.channels") -> None:
    """Mask personal data in everything the channels' loggers emit, whatever handler the process installs."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
