"""docs/CONFIG.md is generated from the schema; a config change without regenerating it fails here."""
from __future__ import annotations

import importlib.util

from ..conftest import REPO


def test_config_reference_matches_the_schema():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8") == module.render(), \
        "docs/CONFIG.md is stale: run .venv/bin/python scripts/config_reference.py"
