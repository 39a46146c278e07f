"""docs/CONFIG.md is generated from the schema, and docs/ARCHITECTURE.md names only what exists."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from typing import Any

from ..conftest import REPO


def test_config_reference_matches_the_schema():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8") == module.render(), \
        "docs/CONFIG.md is stale: run .venv/bin/python scripts/config_reference.py"


# -- docs/ARCHITECTURE.md names what exists ---------------------------------------------------------------------
# A newcomer follows its paths and names; one that was renamed or moved sends them nowhere. These checks read the
# document as text and the code as it is (imports and the syntax tree), so a rename that forgets the doc fails here.

PACKAGES = ("gateway", "alerts", "detectors", "ingest")
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
_FILE = re.compile(r"[\w.-]+(?:/[\w.-]+)*(?:\.(?:py|md|yaml|jsonl?|geojson|html|js|css|toml)|/)")
_DOTTED = re.compile(r"\b(?:gateway|alerts|detectors|ingest)(?:\.[A-Za-z_]\w*)+")
_METHOD = re.compile(r"^([A-Z]\w*)\.([A-Za-z_]\w*)")


def _spans() -> list[tuple[int, str, str | None]]:
    """Each backticked span with its line and, inside the packages table, the row's package folder."""
    out = []
    for lineno, line in enumerate(ARCHITECTURE.read_text(encoding="utf-8").splitlines(), 1):
        row = re.match(r"\| `([a-z_/]+/)` \|", line)
        for span in re.findall(r"`([^`]+)`", line):
            out.append((lineno, span.strip(), row.group(1) if row else None))
    return out


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def _class_members() -> dict[str, set[str]]:
    """Every class of the four packages → the names it defines (methods, fields, attributes set on self)."""
    members: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ClassDef):
                    continue
                names = members.setdefault(node.name, set())
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        names.add(sub.name)
                    elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                        names.add(sub.target.id)
                    elif isinstance(sub, ast.Assign):
                        names.update(t.id for t in sub.targets if isinstance(t, ast.Name))
                    elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                        names.add(sub.attr)
    return members


def test_architecture_paths_exist():
    missing = []
    for lineno, span, row in _spans():
        if "{" in span or " " in span or not _FILE.fullmatch(span) or span.startswith(("run/", "http")):
            continue
        if (REPO / span).exists():
            continue
        if "/" in span.rstrip("/"):
            found = row is not None and (REPO / row / span).exists()
        elif row is not None:  # a module named in its package's row: anywhere below that folder
            found = any((REPO / row).rglob(span.rstrip("/")))
        else:
            continue  # a bare name outside the table (`config.py` of some part) says too little to check
        if not found:
            missing.append(f"line {lineno}: {span}")
    assert not missing, "docs/ARCHITECTURE.md names paths that do not exist:\n" + "\n".join(missing)


def test_architecture_dotted_names_import():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    names = sorted({n for n in _DOTTED.findall(text) if not n.endswith((".py", ".md"))})
    missing = [n for n in names if not _resolves(n)]
    assert not missing, f"docs/ARCHITECTURE.md names modules or objects that do not exist: {missing}"


def test_architecture_class_members_exist():
    members = _class_members()
    missing = []
    for lineno, span, _row in _spans():
        m = _METHOD.match(span)
        if m and m.group(1) in members and m.group(2) not in members[m.group(1)]:
            missing.append(f"line {lineno}: {span}")
    assert not missing, "docs/ARCHITECTURE.md names methods or fields that do not exist:\n" + "\n".join(missing)


def test_every_module_is_in_the_packages_table():
    """The table is where a newcomer looks a file up; a module it does not list is one nobody finds."""
    named = {span for _lineno, span, row in _spans() if row is not None}
    text = ARCHITECTURE.read_text(encoding="utf-8")
    unlisted = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO)
            if path.name == "__init__.py" or "migrations" in rel.parts or path.parent.name == "rules":
                continue  # packages, Alembic scripts, and the video rules (listed by analytic in their row)
            if path.name not in named and f"`{rel.as_posix()}`" not in text:
                unlisted.append(rel.as_posix())
    assert not unlisted, f"modules docs/ARCHITECTURE.md's packages table does not list: {unlisted}"
