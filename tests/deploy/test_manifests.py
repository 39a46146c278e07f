"""Static checks of deploy/: the Kubernetes manifests, the compose files, the Dockerfile and the deployment file.

No cluster and no container engine are available here, so what is validated is said exactly:
- ``kubectl kustomize deploy/`` (Debian's kubernetes-client; no server needed) builds the whole set: YAML,
  resource identities and the ConfigMap generated from deploy/gridwatch.yaml and deploy/mosquitto.conf.
  (``kubectl apply/create --dry-run=client`` both need a server for API discovery, even with
  ``--validate=false``: they fail with "unable to recognize … connection refused", so they are not run.)
- The built objects are then checked field by field with PyYAML: selectors match pod labels, every volume,
  ConfigMap, Secret and probe port referred to exists, every container requests CPU and memory.
- Every GridWatch container's arguments are parsed by the real CLI parser and ``parse_roles``: a role,
  flag or subcommand that stops existing fails here, so the manifests cannot rot. The role set deployed
  is exactly the CLI's roles, each probed on its ``--health-port`` at /healthz and /readyz.
- deploy/gridwatch.yaml validates with the real ``gridwatch check`` code once the Secret's keys are in the
  environment, and every ``${NAME}`` it uses is a key of the Secret and of compose's .env.example.
- The compose files: ``docker-compose config -q`` where a compose tool is installed, and the same
  CLI/role/probe/reference checks on the parsed YAML always.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from gateway.cli import build_parser
from gateway.runtime import ROLES, parse_roles

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NAMESPACE = "gridwatch"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (apt-get install -y kubernetes-client)")
    built = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def _workloads(objects: list[dict]) -> Iterator[dict]:
    return (o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))


def _gridwatch_containers(objects: list[dict]) -> Iterator[tuple[dict, dict]]:
    for w in _workloads(objects):
        spec = w["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            if c["image"].startswith("gridwatch:"):
                yield w, c


def _cli(args: list[str]) -> Any:
    """The real parser; argparse exits on an unknown flag or subcommand, which fails the test with its message."""
    try:
        return build_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"the CLI refuses {shlex.join(args)}") from exc


def test_every_object_is_well_formed_and_in_the_namespace(objects):
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service", "Job"} <= kinds
    for o in objects:
        assert o.get("apiVersion") and o.get("kind"), o
        name = o["metadata"]["name"]
        assert isinstance(name, str) and DNS_1123.match(name), name  # `name: y` would be a YAML boolean
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == NAMESPACE, name


def test_workloads_refer_only_to_what_exists(objects):
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for w in _workloads(objects):
        spec, name = w["spec"], w["metadata"]["name"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        pod = spec["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])} | {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for v in pod.get("volumes", []):
            if "configMap" in v:
                assert ("ConfigMap", v["configMap"]["name"]) in names, (name, v)
            if "persistentVolumeClaim" in v:
                assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in names, (name, v)
        for c in pod.get("initContainers", []) + pod["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes, (name, c["name"])
            for ref in c.get("envFrom", []):
                assert ("Secret", ref["secretRef"]["name"]) in names
            for env in c.get("env", []):
                if "valueFrom" in env:
                    assert ("Secret", env["valueFrom"]["secretKeyRef"]["name"]) in names
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = (c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket") or {}).get("port")
                assert port is None or port in ports, (name, c["name"], probe)
        for c in pod["containers"]:
            requests = c.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), (name, c["name"])


def test_services_select_pods_that_exist(objects):
    pods = [(w["spec"]["template"]["metadata"]["labels"], w["spec"]["template"]["spec"]["containers"]) for w in _workloads(objects)]
    for svc in (o for o in objects if o["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        matched = [cs for labels, cs in pods if selector.items() <= labels.items()]
        assert matched, svc["metadata"]["name"]
        container_ports = {p["name"] for cs in matched for c in cs for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port.get("targetPort", port["name"]) in container_ports, (svc["metadata"]["name"], port)


def test_gridwatch_containers_run_real_roles_with_probes(objects):
    deployed = []
    for w, c in _gridwatch_containers(objects):
        args = _cli(c["args"])
        assert args.config == Path("/etc/gridwatch/gridwatch.yaml"), c["args"]
        assert {"name": "gridwatch-secrets"} in [e["secretRef"] for e in c["envFrom"]], c["name"]
        if args.command != "run":
            continue
        roles = parse_roles(args.roles)  # raises on a role the CLI does not know
        assert len(roles) == 1 and w["kind"] == "Deployment", c["args"]
        deployed.append(roles[0])
        health = next(p["containerPort"] for p in c["ports"] if p["name"] == "health")
        assert args.health_port == health
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sorted(deployed) == sorted(ROLES)


def _branch_schema(doc: dict) -> dict:
    """The deployment file names settings other branches add (issue-13c's S3 evidence store, issue-13a's pool);
    until they are merged this branch's schema does not know them, so they are left out of the check here —
    and only while the schema lacks them."""
    from detectors.config import DetectionConfig
    from gateway.config import ServicesConfig

    if "evidence_store" not in ServicesConfig.model_fields:
        doc["services"].pop("evidence_store", None)
    if "pool" not in DetectionConfig.model_fields:
        doc["detection"].pop("pool", None)
    return doc


def test_the_deployment_file_validates_with_the_secrets_and_nothing_else(objects, monkeypatch, tmp_path):
    from gateway.config import parse_deployment

    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gridwatch-config")
    text = (DEPLOY / "gridwatch.yaml").read_text(encoding="utf-8")
    assert config["data"]["gridwatch.yaml"] == text
    assert config["data"]["mosquitto.conf"] == (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    secret = next(o for o in objects if o["kind"] == "Secret")["stringData"]
    used = set(ENV_REF.findall(text))
    assert used <= set(secret), used - set(secret)
    example = (DEPLOY / "compose" / ".env.example").read_text(encoding="utf-8")
    assert used <= set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    for key in secret:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(Exception, match="GRIDWATCH_SQL_PASSWORD is not set"):
        parse_deployment(text, "gridwatch.yaml")
    for key, value in secret.items():
        monkeypatch.setenv(key, value)
    # the image's paths: the grid file is the repository's (COPY config), the run dir a scratch folder
    doc = _branch_schema(yaml.safe_load(text))
    doc["grids"]["file"] = str(REPO / doc["grids"]["file"].removeprefix("/app/"))
    doc["services"]["run_dir"] = str(tmp_path)
    dep = parse_deployment(yaml.safe_dump(doc, allow_unicode=True), "gridwatch.yaml")
    assert dep.services.sql_url.startswith("postgresql") and secret["GRIDWATCH_SQL_PASSWORD"] in dep.services.sql_url
    assert dep.gateway.secret_key == secret["GRIDWATCH_SECRET_KEY"] and not dep.services.autostart


def _compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / "compose" / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.workers.yml"])
def test_compose_files(name, tmp_path):
    doc = _compose(name)
    services = doc["services"]
    text = (DEPLOY / "compose" / name).read_text(encoding="utf-8")
    example = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (DEPLOY / "compose" / ".env.example").read_text(encoding="utf-8"), re.M))
    assert set(ENV_REF.findall(text)) <= example, set(ENV_REF.findall(text)) - example
    roles = []
    for sname, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (sname, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / "compose" / source).resolve().exists(), (sname, source)
            elif not source.startswith("$"):
                assert source in doc.get("volumes", {}), (sname, source)
        if not str(svc.get("image", "")).startswith("${GRIDWATCH_IMAGE"):
            continue
        args = _cli([a.replace("${GRIDWATCH_VIDEO_WORKERS:-2}", "2") for a in svc["command"]])
        if args.command == "run":
            roles += list(parse_roles(args.roles))
            assert args.health_port == 8081
            check = svc["healthcheck"]["test"]
            assert check[:4] == ["CMD", "python", "-m", "gateway.cli"], check
            probe = _cli(check[4:])
            assert (probe.command, probe.port, probe.ready) == ("probe", 8081, True), check
    assert sorted(roles) == sorted(ROLES if name == "docker-compose.yml" else ("api", "video"))
    tool = shutil.which("docker-compose")
    if tool:  # the compose tool's own validation (Debian's docker-compose 1.29), on a copy with .env made from the example
        copy = tmp_path / "deploy"
        shutil.copytree(DEPLOY, copy)
        shutil.copy(copy / "compose" / ".env.example", copy / "compose" / ".env")
        done = subprocess.run([tool, "-f", str(copy / "compose" / name), "config", "-q"], cwd=copy / "compose",
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_the_dockerfile_copies_what_exists_and_runs_the_cli():
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
    entry = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert yaml.safe_load(entry.split(" ", 1)[1]) == ["python", "-m", "gateway.cli"]
    cmd = yaml.safe_load(next(line for line in lines if line.startswith("CMD")).split(" ", 1)[1])
    assert parse_roles(_cli(cmd).roles) == ("api",)
