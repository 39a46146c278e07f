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


def test_a_multi_host_deployment_on_sqlite_is_refused_by_check_and_run(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("  stream_prefix: gw", "  stream_prefix: gw\n  multi_host: true"))
    where = f"{path}:{_line_of(path, 'sql_url: sqlite')}: services.sql_url: services.multi_host is true"
    [problem] = _problems(path)
    assert str(problem).startswith(where) and "PostgreSQL" in str(problem)
    for argv in (["check", str(path)], ["run", "--config", str(path)]):
        refused = subprocess.run([sys.executable, "-m", "gateway.cli", *argv], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and where in refused.stderr, (argv, refused.stderr)
    on_postgres = _copy_demo(tmp_path / "pg", lambda t: t.replace("  stream_prefix: gw", "  stream_prefix: gw\n  multi_host: true").replace(
        "sqlite:///{run_dir}/gridwatch.db", "postgresql+psycopg://gw@db.example:5432/gridwatch"))
    assert load_deployment(on_postgres).services.multi_host


def test_a_redis_cluster_url_without_nodes_is_named_with_its_line(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("redis_url: redis://127.0.0.1:6379/0", "redis_url: redis+cluster://a:1,b"))
    [problem] = _problems(path)
    assert (problem.line, problem.field) == (_line_of(path, "redis+cluster"), "services.redis_url")
    assert "node 'b' is not host:port" in problem.message
    cluster = _copy_demo(tmp_path / "ok", lambda t: t.replace("redis_url: redis://127.0.0.1:6379/0",
                                                              "redis_url: redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000"))
    from gateway.config import service_endpoints

    assert {("10.0.0.1", 7000), ("10.0.0.2", 7000)} <= set(service_endpoints(load_deployment(cluster)))  # never a camera


def test_check_command_exits_non_zero_and_prints_every_problem(tmp_path):
    path = _copy_demo(tmp_path, lambda t: t.replace("bearing_deg: 180", "bearing_deg: south").replace("  stream_prefix: gw", "  stream_prefix: gw\n  colour: blue"))
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert f"{path}:{_line_of(path, 'colour: blue')}: services.colour" in bad.stderr
    assert f"{path}:{_line_of(path, 'bearing_deg: south')}: cameras[0].pose.bearing_deg" in bad.stderr
    good = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(DEMO)], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr



def test_flat_camera_fields_still_load_into_their_sections_and_check_names_each_use(tmp_path):
    """The first schema's flat camera fields (detect_fps, min_score, masks) load for one release, land in the
    nested sections (detect, motion) and ``gridwatch check`` names every use with its line."""
    flat = ("    detect: {fps: 2}           # small", "    detect_fps: 2\n    min_score: 0.35\n"
            "    masks: [[[0, 0], [0.2, 0], [0.2, 0.1]]]           # small")
    path = _copy_demo(tmp_path, lambda t: t.replace(*flat))
    plaza = load_deployment(path).cameras[0]
    assert (plaza.detect.fps, plaza.detect.min_score) == (2, 0.35)
    assert plaza.motion.masks == [[(0, 0), (0.2, 0), (0.2, 0.1)]]
    checked = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(path)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr
    for field, section in (("detect_fps", "detect.fps"), ("min_score", "detect.min_score"), ("masks", "motion.masks")):
        assert f"{path}:{_line_of(path, field + ':')}: cameras[0].{field}: deprecated: write {section}" in checked.stdout
    demo = subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(DEMO)], capture_output=True, text=True,
                          timeout=60)
    assert "deprecated" not in demo.stdout, "the shipped demo must use the current schema"


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
