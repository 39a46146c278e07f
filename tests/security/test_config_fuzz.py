"""Mutated deployment files: ``gridwatch check`` never crashes and always names file:line: field.

Hypothesis mutates the demo deployment (config/demo.yaml) — values replaced by values of other
types, keys dropped, unknown keys added, lines deleted or duplicated, bytes flipped — and feeds
each result to ``gateway.config.parse_deployment`` (what ``gridwatch check`` runs). Every outcome
must be either a valid Deployment or a ConfigError whose every problem reads ``file:line: field: …``
(or ``file: …`` for a file-level YAML error without a position).
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, parse_deployment

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
TEXT = DEMO.read_text(encoding="utf-8")
DATA = yaml.safe_load(TEXT)
FILE = "config/demo.yaml"
PROBLEM = re.compile(r"^config/demo\.yaml(:\d+)?: \S.*: .+", re.S)

pytestmark = pytest.mark.timeout(180)

ODD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                       st.text(max_size=30), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
                       st.sampled_from(["", "../../../../etc/passwd", "http://169.254.169.254/", "${HOME}", "\x00", "一键报警"]))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


PATHS = [p for p in _paths(DATA) if p]


def _check(text: str) -> None:
    try:
        parse_deployment(text, FILE, DEMO.parent)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError with no problem in it"
        for problem in exc.problems:
            line = str(problem)
            assert PROBLEM.match(line) or re.match(r"^config/demo\.yaml(:\d+)?: \(top level\): .+", line), line


@settings(max_examples=120, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add"]), ODD_VALUES),
                min_size=1, max_size=3))
def test_structural_mutations_give_valid_or_located_errors(mutations):
    data = copy.deepcopy(DATA)
    for path, op, value in mutations:
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            if op == "replace":
                parent[key] = value
            elif op == "delete":
                del parent[key]
            elif isinstance(parent, dict):
                parent[f"unknown_{key}"] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


LINES = TEXT.splitlines(keepends=True)


@settings(max_examples=120, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, len(LINES) - 1), st.sampled_from(["drop", "dup", "flip", "indent", "cut"]),
                          st.integers(0, 200)), min_size=1, max_size=3))
def test_textual_mutations_give_valid_or_located_errors(mutations):
    lines = list(LINES)
    for index, op, n in mutations:
        index %= len(lines)
        line = lines[index]
        if op == "drop":
            del lines[index]
        elif op == "dup":
            lines.insert(index, line)
        elif op == "flip" and line.strip():
            pos = n % len(line)
            lines[index] = line[:pos] + chr((ord(line[pos]) + 1 + n) % 0x3000 or 1) + line[pos + 1:]
        elif op == "indent":
            lines[index] = " " * (n % 5) + line
        elif op == "cut":
            lines = lines[: max(1, index)]
        if not lines:
            lines = [";"]
    _check("".join(lines))


@pytest.mark.parametrize("text", ["", "---\n", "[]\n", "name: x\n", "\x00\x01", "a: [\n",
                                  "!!python/object:os.system ls\n", "grids: {file: /etc/passwd}\nname: x\n"])
def test_degenerate_documents(text):
    _check(text)


@pytest.mark.parametrize("text", ["name: &a [*a]\n", "name: x\ngrids: &g {file: *g}\n"])
def test_recursive_aliases_are_a_config_error(text):
    _check(text)


def test_gridwatch_check_cli_prints_file_line_field_and_exits_1(tmp_path):
    bad = copy.deepcopy(DATA)
    bad["cameras"][0]["pose"]["bearing_deg"] = "north"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # grids.file is relative to the deployment file: point it back at the demo district.
    text = path.read_text(encoding="utf-8").replace(f"file: {DATA['grids']['file']}", f"file: {DEMO.parent / DATA['grids']['file']}")
    path.write_text(text, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(path)], cwd=REPO, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(rf"^{re.escape(str(path))}:\d+: cameras\[0\]\.pose\.bearing_deg: ", r.stderr, re.M), r.stderr
