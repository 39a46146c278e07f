"""Masking of personal data (phone numbers, names, ID numbers) for lists, logs and workers' views.

Residents' numbers and names are visible only to the roles that must call them back (dispatcher,
admin); everybody else, every log line and every ticket text sees ``138****1234`` and ``张*``.
"""
from __future__ import annotations

import logging
import re

import phonenumbers
from phonenumbers import Leniency, NumberParseException, PhoneNumber, PhoneNumberMatcher, PhoneNumberType

# Second pass of ``mask_text`` after phonenumbers' matcher, kept because the matcher was measured to miss
# what these catch (tests/channels/test_parts.py::test_phone_masking_in_free_text): a number glued to Latin
# letters ("wx13812341234", "tel057188886666") and numbers in ranges not (yet) allocated (140…). The matcher
# in turn finds what these miss: "(0571)88886666", "0571 8888 6666", full-width digits.
MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
MOBILE_NUMBER = "请输入正确的11位手机号码"
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

# Roles that see residents' phone numbers and names in full.
UNMASKED_ROLES = frozenset({"dispatcher", "admin"})


def _parse(raw: str) -> PhoneNumber | None:
    """A number as phonenumbers reads it (national numbers taken as Chinese), or None."""
    if re.search(r"[A-Za-z]", raw):   # phonenumbers reads letters as a keypad ("138-ABCD-1234"): not a number here
        return None
    try:
        return phonenumbers.parse(raw, "CN")
    except NumberParseException:
        return None


def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits; raises ValueError with a message a resident understands.

    Any way of writing it is accepted (+86 / 0086 / 86, spaces, dashes, dots, full-width digits); the
    number must be a valid Chinese mobile number in phonenumbers' metadata, since SMS goes to it.
    """
    number = _parse(str(raw or ""))
    if (number is None or number.country_code != 86 or number.extension or not phonenumbers.is_valid_number(number)
            or phonenumbers.number_type(number) not in _MOBILE_TYPES):
        raise ValueError(MOBILE_NUMBER)
    return str(number.national_number)


def _masked(number: PhoneNumber) -> str:
    """``138****1234`` for a mobile, ``0571-****6666`` for a landline (area code kept), else ``****`` + last four."""
    digits = str(number.national_number)
    if number.country_code == 86 and len(digits) == 11 and digits[0] == "1":
        return f"{digits[:3]}****{digits[-4:]}"
    area = phonenumbers.length_of_geographical_area_code(number) if number.country_code == 86 else 0
    return f"0{digits[:area]}-****{digits[-4:]}" if area else f"****{digits[-4:]}"


def mask_phone(phone: str | None) -> str:
    """``13812341234`` → ``138****1234``; landlines keep area code and last four digits; anything else ``****``."""
    if not phone:
        return ""
    number = _parse(phone)
    return _masked(number) if number is not None and len(str(number.national_number)) >= 7 else "****"


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
    # The matcher costs about 1 ms a text with digits in it; a text with fewer than 7 digits holds no number.
    found = list(PhoneNumberMatcher(text, "CN", leniency=Leniency.VALID)) if sum(c.isdigit() for c in text) >= 7 else []
    for m in reversed(found):   # from the end, so earlier offsets stay right
        text = text[:m.start] + _masked(m.number) + text[m.end:]
    text = MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)


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
