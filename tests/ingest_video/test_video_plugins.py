"""Source plugins through the ``gridwatch.sources`` entry-point group, as an installed package would add them."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from ingest.video import InvalidSourceError, register_source, reload_plugins, unregister_source
from ingest.video.registry import known_schemes
from tests.fixtures.cameras import Recorder, camera

PLUGIN = textwrap.dedent('''
    """A third-party source: a test pattern whose brightness ramps (stands in for a vendor SDK)."""
    import time
    import numpy as np
    from ingest.video import Picture, Source, StreamInfo

    class PatternSource(Source):
        kind = "pattern"

        def open(self):
            return StreamInfo(codec="raw", width=160, height=120, fps=20, kind="pattern")

        def frames(self):
            n = 0
            while not self.ctx.stop.wait(0.05):
                image = np.full((120, 160, 3), n % 256, np.uint8)
                yield Picture(pts=n * 0.05, array=image, key_frame=True)
                n += 1
''')


@pytest.fixture
def installed_plugin(tmp_path: Path):
    """A distribution on sys.path with an entry_points.txt, exactly what `pip install` leaves behind."""
    module = f"gw_test_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[gridwatch.sources]\ntestpattern = {module}:PatternSource\n"
                                           f"brokenplugin = {module}_missing:Nope\n")
    sys.path.insert(0, str(tmp_path))
    reload_plugins()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)
    reload_plugins()


@pytest.mark.timeout(30)
def test_entry_point_plugin_adds_a_scheme(installed_plugin, make_manager, recorder: Recorder) -> None:  # noqa: ANN001
    assert "testpattern" in known_schemes()
    manager = make_manager(allow_private_sources=False)
    manager.add(camera("vendor", "testpattern:device-7", analysis={"fps": 10}))
    frames = recorder.wait_frames("vendor", 4, 10)
    assert (frames[-1].width, frames[-1].height) == (160, 120)
    assert manager.status()["vendor"].kind == "pattern"
    # a plugin that fails to import is refused with the reason, and nothing else is affected
    manager.start([camera("broken", "brokenplugin:x")])
    assert "failed to load" in manager.status()["broken"].reason
    assert manager.status()["vendor"].state == "online"


@pytest.mark.timeout(30)
def test_in_process_registration_and_builtin_protection(make_manager, recorder: Recorder) -> None:
    from ingest.video.synthetic import SyntheticSource

    with pytest.raises(ValueError, match="built-in"):
        register_source("rtsp", SyntheticSource)
    register_source("gwtestsyn", lambda url, ctx: SyntheticSource("synthetic:walker", ctx))
    try:
        manager = make_manager(allow_private_sources=False)
        manager.add(camera("x", "gwtestsyn:anything"))
        recorder.wait_frames("x", 2, 10)
    finally:
        unregister_source("gwtestsyn")
    with pytest.raises(InvalidSourceError, match="unsupported source scheme"):
        make_manager().add(camera("y", "gwtestsyn:anything"))
