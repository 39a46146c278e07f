"""`gridwatch check`: a good deployment passes; each kind of mistake is named with file, line and field."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_deployment

from ..conftest import DEMO, REPO


def _copy_demo(tmp_path: Path, edit) -> Path:
    shutil.copytree(REPO / "config" / "grids", tmp_path / "grids")
    text = edit(DEMO.read_text(encoding="utf-8"))
    path = tmp_path / "deploy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list:
    with pytest.raises(ConfigError) as err:
        load_deployment(path)
    return err.value.problems


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_demo_deployment_is_valid():
    dep = load_deployment(DEMO)
    assert len(dep.cameras) >= 4 and len(dep.devices) >= 4
    roles = {u.role for u in dep.gateway.users}
    assert {"admin", "operator", "grid_worker"} <= roles


def test_demo_grid_hierarchy_matches_the_brief():
    from alerts.grids import load_grid_file

    dep = load_deployment(DEMO)
    grids = load_grid_file(dep.resolve(dep.grids.file))
    assert len(grids.level("district")) == 1
    assert len(grids.level("street")) == 2
    assert len(grids.level("community")) == 4
    base = grids.level("grid")
    assert len(base) >= 12 and all(len(g.code) == 15 and g.code.isdigit() for g in base)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("name: 清水区综治中心 (demo)", "name: [unclosed"))
    (problem,) = _problems(path)
    assert problem.file == str(path) and "YAML syntax" in problem.message and problem.line is not None


def test_unknown_field_is_named_with_its_line(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("  stream_prefix: gw", "  stream_prefix: gw\n  colour: blue"))
    (problem,) = _problems(path)
    assert problem.field == "services.colour"
    assert problem.line == _line_of(path, "colour: blue")
    assert "Extra inputs" in problem.message


def test_wrong_type_is_named_with_its_line(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("bearing_deg: 180", "bearing_deg: south"))
    (problem,) = _problems(path)
    assert problem.field == "cameras[0].pose.bearing_deg"
    assert problem.line == _line_of(path, "bearing_deg: south")


def test_polygon_that_does_not_close_is_refused(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t)
    geo = tmp_path / "grids" / "qingshui.geojson"
    import json

    data = json.loads(geo.read_text(encoding="utf-8"))
    data["features"][5]["geometry"]["coordinates"][0].pop()  # drop the closing position
    geo.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (problem,) = _problems(path)
    assert problem.field == "grids.file" and "does not close" in problem.message
    assert data["features"][5]["properties"]["code"] in problem.message


def test_camera_outside_every_grid_is_refused(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("{lon: 120.135, lat: 30.253}", "{lon: 121.500, lat: 31.200}"))
    (problem,) = _problems(path)
    assert problem.field == "cameras[1].pose.position" and "outside every grid" in problem.message
    assert problem.line == _line_of(path, "121.500")


def test_check_command_exits_non_zero_and_prints_every_problem(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("bearing_deg: 180", "bearing_deg: south").replace("  stream_prefix: gw", "  stream_prefix: gw\n  colour: blue"))
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert f"{path}:{_line_of(path, 'colour: blue')}: services.colour" in bad.stderr
    assert f"{path}:{_line_of(path, 'bearing_deg: south')}: cameras[0].pose.bearing_deg" in bad.stderr
    good = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(DEMO)], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr



def test_environment_references_fill_values_and_name_a_missing_one(monkeypatch):
    from gateway.config import ConfigError, DEMO_CONFIG, parse_deployment

    text = DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "  stream_prefix: gw\n", "  stream_prefix: gw  # not ${IN_A_COMMENT}\n  sql_url: postgresql+psycopg://gw:${GW_TEST_PW}@db/gw\n", 1)
    text = text.replace("  sql_url: sqlite:///{run_dir}/gridwatch.db\n", "", 1)
    monkeypatch.delenv("GW_TEST_PW", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_deployment(text, "d.yaml", DEMO_CONFIG.parent)
    line = text.splitlines().index("  sql_url: postgresql+psycopg://gw:${GW_TEST_PW}@db/gw") + 1
    assert [str(p) for p in err.value.problems] == [
        f"d.yaml:{line}: services.sql_url: environment variable GW_TEST_PW is not set (${{GW_TEST_PW}})"]
    monkeypatch.setenv("GW_TEST_PW", "pa$$word")
    dep = parse_deployment(text.replace("${GW_TEST_PW}", "${GW_TEST_PW}-$$x"), "d.yaml", DEMO_CONFIG.parent)
    assert dep.services.sql_url == "postgresql+psycopg://gw:pa$$word-$x@db/gw"
