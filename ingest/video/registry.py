"""Which Source class handles which URL scheme, including plugins from the ``gridwatch.sources`` entry points.

Integrators add a source type (a vendor SDK, a GB/T 28181 gateway client, a frame grabber) by
publishing a package with an entry point ``[project.entry-points."gridwatch.sources"] myscheme =
"mypkg.module:MySource"`` — a callable ``(url, SourceContext) -> Source`` — without touching GridWatch.
Built-in schemes cannot be overridden by plugins, so installing a package cannot silently reroute
every RTSP camera.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points

from ingest.video.errors import UnsupportedSourceError
from ingest.video.source import Source, SourceContext

log = logging.getLogger(__name__)

SourceFactory = Callable[[str, SourceContext], Source]
ENTRY_POINT_GROUP = "gridwatch.sources"


def _builtin() -> dict[str, SourceFactory]:
    from ingest.video.http_source import HttpSource
    from ingest.video.pyav_source import PyAVSource
    from ingest.video.synthetic import SyntheticSource
    from ingest.video.whip import WhipSource

    return {
        "rtsp": PyAVSource, "rtsps": PyAVSource, "rtmp": PyAVSource, "rtmps": PyAVSource, "file": PyAVSource,
        "http": HttpSource, "https": HttpSource, "synthetic": SyntheticSource, "whip": WhipSource,
    }


_lock = threading.Lock()
_registered: dict[str, SourceFactory] = {}
_plugins: dict[str, object] | None = None  # scheme -> EntryPoint (loaded lazily)


def _scan_plugins() -> dict[str, object]:
    global _plugins
    with _lock:
        if _plugins is None:
            found: dict[str, object] = {}
            try:
                for ep in entry_points(group=ENTRY_POINT_GROUP):
                    found[ep.name.lower()] = ep
            except Exception:  # noqa: BLE001 - a broken installed distribution must not stop ingest
                log.exception("scanning entry points %s failed", ENTRY_POINT_GROUP)
            _plugins = found
        return _plugins


def reload_plugins() -> None:
    """Forget the scanned entry points (after installing a plugin at runtime, and in tests)."""
    global _plugins
    with _lock:
        _plugins = None


def register_source(scheme: str, factory: SourceFactory) -> None:
    """Register a source type in-process (embedding applications, tests); same contract as a plugin."""
    scheme = scheme.lower()
    if scheme in _builtin():
        raise ValueError(f"{scheme!r} is a built-in source scheme")
    _registered[scheme] = factory


def unregister_source(scheme: str) -> None:
    _registered.pop(scheme.lower(), None)


def known_schemes() -> frozenset[str]:
    """Every scheme a camera URL may use on this installation."""
    return frozenset(_builtin()) | frozenset(_registered) | frozenset(_scan_plugins()) | {"footage"}


def source_factory(scheme: str) -> SourceFactory:
    """The factory for a scheme; UnsupportedSourceError when there is none or the plugin fails to load."""
    scheme = scheme.lower()
    builtin = _builtin()
    if scheme in builtin:
        return builtin[scheme]
    if scheme in _registered:
        return _registered[scheme]
    ep = _scan_plugins().get(scheme)
    if ep is None:
        raise UnsupportedSourceError(f"no source type for scheme {scheme!r}")
    try:
        factory = ep.load()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - report the broken plugin, keep running
        raise UnsupportedSourceError(f"source plugin for {scheme!r} failed to load: {type(exc).__name__}: {exc}") from None
    if not callable(factory):
        raise UnsupportedSourceError(f"source plugin for {scheme!r} is not callable")
    return factory
