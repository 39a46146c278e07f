"""Errors of the video ingest, each carrying a reason an operator can read (never a credential)."""
from __future__ import annotations


class SourceError(Exception):
    """A camera source cannot be used; ``reason`` is safe to show and log (URLs in it are redacted)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class InvalidSourceError(SourceError):
    """The URL is malformed, uses a scheme GridWatch does not accept, or points where it must not (SSRF guard)."""


class UnsupportedSourceError(SourceError):
    """The URL's scheme has no source type, or the stream carries nothing GridWatch can decode."""


class SourceUnavailableError(SourceError):
    """The source cannot exist on this machine (a missing local file or footage clip, and no fallback)."""


class ProbeError(SourceError):
    """Probing connected to nothing usable within the time allowed."""


class CameraExistsError(SourceError):
    """``add`` was called for a camera id that is already attached."""


class UnknownCameraError(SourceError, KeyError):
    """The camera id is not attached to this manager."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.reason
