"""Running the tests never rewrites tracked files: screenshots go to an ignored folder unless asked for."""
from __future__ import annotations

import subprocess

from tests.support import REPO, screenshot_dir


def test_screenshots_go_to_ignored_artifacts_unless_refreshing_the_docs_is_asked_for(monkeypatch):
    monkeypatch.delenv("GRIDWATCH_UPDATE_SCREENSHOTS", raising=False)
    default = screenshot_dir()
    assert default == REPO / "tests" / "artifacts" / "screenshots"
    probe = default / "console-home.png"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=REPO)
    assert ignored.returncode == 0, f"{probe} is not git-ignored"
    monkeypatch.setenv("GRIDWATCH_UPDATE_SCREENSHOTS", "0")
    assert screenshot_dir() == default
    monkeypatch.setenv("GRIDWATCH_UPDATE_SCREENSHOTS", "1")
    assert screenshot_dir() == REPO / "docs" / "screenshots"
