"""From a camera's configured URL to the URL that is actually opened: footage clips, local files, fallbacks.

The demo deployment names real clips (``footage:plaza.avi``) that are absent on a fresh checkout;
rather than showing five dead cameras it switches to the configured fallback (a generated scene)
and says so in the camera's status.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.config import SourceConfig
from ingest.video.errors import SourceUnavailableError
from ingest.video.pyav_source import local_path
from ingest.video.urls import SourcePolicy, url_scheme, validate_source_url


@dataclass(frozen=True)
class ResolvedSource:
    url: str  # what the source type opens
    note: str = ""  # shown in the status reason (e.g. "fallback synthetic:crowd: footage … missing")


def _local_missing(url: str, base_dir: Path, footage_dir: Path) -> tuple[str, str | None]:
    """(url to open, why it is unavailable or None)."""
    scheme = url_scheme(url)
    if scheme == "footage":
        name = url.split(":", 1)[1]
        path = (footage_dir / name).resolve()
        if path.is_file():
            return str(path), None
        return url, f"footage clip {name} not found in {footage_dir}"
    if scheme == "file":
        path = local_path(url, base_dir)
        return (url, None) if path.is_file() else (url, f"file not found: {path}")
    return url, None


def resolve_source(source: SourceConfig, *, base_dir: Path, footage_dir: Path, allow_private: SourcePolicy | bool) -> ResolvedSource:
    """Validate and resolve a camera's source (its sub-stream when one is set, since that is what is analysed).

    Raises InvalidSourceError for refused URLs and SourceUnavailableError when neither the source nor
    its fallback can exist here.
    """
    wanted = source.substream_url or source.url
    validate_source_url(wanted, allow_private=allow_private)
    url, missing = _local_missing(wanted, base_dir, footage_dir)
    if missing is None:
        return ResolvedSource(url)
    if not source.fallback:
        raise SourceUnavailableError(missing)
    validate_source_url(source.fallback, allow_private=allow_private)
    fb_url, fb_missing = _local_missing(source.fallback, base_dir, footage_dir)
    if fb_missing is not None:
        raise SourceUnavailableError(f"{missing}; fallback unavailable too: {fb_missing}")
    return ResolvedSource(fb_url, note=f"using fallback {source.fallback} ({missing})")
