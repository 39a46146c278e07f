"""The deployment file: one YAML composed of each part's own section, validated with file/line/field errors.

Each part owns the schema of its section (``ingest.config``, ``detectors.config``, ``alerts.config``);
this module only composes them, resolves paths relative to the file, and turns pydantic's errors
into messages an operator can act on: ``config/demo.yaml:42: cameras[3].pose.bearing_deg: …``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.channels.config import ChannelsConfig
from alerts.config import AlertsConfig, GridsConfig
from detectors.config import FLAT_CAMERA_FIELDS, CameraAnalytics, DetectionConfig
from detectors.device_profiles import NAME as PROFILE_NAME, DeviceProfile, merged_profiles, shipped_profiles
from ingest.blobs import BlobStore, EvidenceStoreConfig, local_dir, open_blob_store
from ingest.config import CameraConfig, DeviceConfig, IngestConfig

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServicesConfig(_Strict):
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="one server: redis://[:password@]host:port/db (rediss:// "
                           "for TLS); a Redis Cluster: redis+cluster://[:password@]host:port,host:port,… (rediss+cluster:// "
                           "for TLS), never auto-started; every key carries the {stream_prefix} hash tag, so one slot holds them")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    sql_url: str = Field("sqlite:///{run_dir}/gridwatch.db", description="{run_dir} is replaced by run_dir")
    run_dir: str = Field("../run", description="data of auto-started services, the SQLite file, evidence; relative to the deployment file")
    stream_prefix: str = Field("gw", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                               description="prefix of every Redis key GridWatch writes, as a Redis Cluster hash tag: {gw}:anomalies …")
    autostart: bool = Field(True, description="start redis-server/mosquitto when a localhost URL has no listener")
    evidence_store: EvidenceStoreConfig = Field(EvidenceStoreConfig(), description="where snapshots, clips and photos "
                                                "are kept: a local folder, or an S3-compatible bucket for several hosts")
    multi_host: bool = Field(False, description="roles of this deployment run on more than one machine (API nodes behind a "
                                                "balancer, video workers on several hosts): needs PostgreSQL, refused with SQLite")

    @field_validator("redis_url")
    @classmethod
    def _redis_nodes(cls, value: str) -> str:
        """A cluster URL that names no usable node is a file:line error, not a start-up traceback."""
        from ingest.redis_connect import is_cluster, redis_nodes

        if is_cluster(value):
            redis_nodes(value)
        return value



class User(_Strict):
    username: str
    password: str | None = Field(None, description="plain text only for the demo accounts; prefer password_hash")
    password_hash: str | None = None
    role: Literal["operator", "dispatcher", "grid_worker", "grid_leader", "supervisor", "admin", "integrator"]
    grids: list[str] = Field(default_factory=list, description="grid codes (any level) this user may see")
    display_name: str = ""
    api_key: str | None = Field(None, description="plain X-API-Key, demo only; prefer api_key_sha256 (integrators)")
    api_key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the X-API-Key")


class TileSource(_Strict):
    """One base map for the console's map: an online XYZ URL or an offline folder of {z}/{x}/{y} tiles."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="shown in the map's layer switcher; names the offline folder's URL")
    url: str | None = Field(None, description="XYZ template, e.g. https://{s}.tile.example/{z}/{x}/{y}.png (the host is added to the CSP)")
    dir: str | None = Field(None, description="offline tiles {dir}/{z}/{x}/{y}.png|jpg|webp, relative to the deployment file")
    crs: Literal["WGS84", "GCJ02"] = Field("WGS84", description="GCJ02 for Chinese providers (AMap, Tencent, …): the map draws every layer offset to match")
    attribution: str = ""
    max_zoom: int = Field(18, ge=1, le=22)

    @model_validator(mode="after")
    def _one_place(self) -> "TileSource":
        if (self.url is None) == (self.dir is None):
            raise ValueError("give exactly one of url (online tiles) or dir (an offline tile folder)")
        return self


class GatewayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token_ttl_s: int = Field(900, gt=0)
    refresh_ttl_s: int = Field(7 * 86400, gt=0)
    secret_key: str | None = Field(None, description="JWT signing key; generated per run directory when absent")
    users: list[User] = Field(default_factory=list)
    language: Literal["zh", "en"] = "zh"
    tile_url: str | None = Field(None, description="one online WGS-84 base map (older form of map_tiles)")
    map_tiles: list[TileSource] = Field(default_factory=list, description="base maps of the console's map; none: grids on a blank background")
    bcrypt_rounds: int = Field(12, ge=4, le=16, description="cost of the password hashes made at start-up")
    max_body_bytes: int = Field(8_388_608, gt=0, description="largest request body accepted (413 above); reports carry photos")
    login_per_minute: float = Field(10, gt=0, description="login attempts per client address in any 60 s, one budget for every "
                                    "API process (counted in Redis; per process while Redis is away)")
    alarm_per_minute: float = Field(30, gt=0, description="HTTPS alarm presses per device and per client address in any 60 s, "
                                    "shared like login_per_minute")
    cors_origins: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(top level)'}: {self.message}"


class Camera(CameraConfig, CameraAnalytics):
    """A camera as the deployment file describes it: its source and pose (ingest) and its analytics (detectors)."""


class Deployment(_Strict):
    name: str
    timezone: str = "Asia/Shanghai"
    services: ServicesConfig = ServicesConfig()
    grids: GridsConfig
    ingest: IngestConfig = IngestConfig()
    detection: DetectionConfig = DetectionConfig()
    alerts: AlertsConfig = AlertsConfig()
    cameras: list[Camera] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    device_profiles: dict[str, DeviceProfile] = Field(
        default_factory=shipped_profiles,
        description="sensor rules per kind of device (smoke, gas, water_level, manhole_tilt, door, fence, battery, "
                    "heartbeat); the shipped ones are the defaults, a profile named here replaces the shipped one of "
                    "that name; a device uses its `profile`, else the profile named like its `type`, else `generic`")
    channels: ChannelsConfig = ChannelsConfig()
    gateway: GatewayConfig = GatewayConfig()

    # Set by the loader, not by the file.
    base_dir: Path = Field(Path("."), exclude=True)
    source_file: Path | None = Field(None, exclude=True)
    deprecations: list[ConfigProblem] = Field(default_factory=list, exclude=True)

    def resolve(self, relative: str) -> Path:
        """A path of the deployment file, taken relative to the file's folder."""
        path = Path(os.path.expanduser(relative))
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.services.run_dir)

    @property
    def evidence_dir(self) -> Path:
        """The local evidence folder (the local store's root; scratch only where evidence goes to S3)."""
        return local_dir(self.services.evidence_store, self.run_dir, self.base_dir)

    def evidence_store(self) -> BlobStore:
        """The evidence store this deployment names (a folder is created; a bucket is not contacted yet)."""
        return open_blob_store(self.services.evidence_store, self.run_dir, self.base_dir)

    @property
    def sql_url(self) -> str:
        return self.services.sql_url.replace("{run_dir}", str(self.run_dir))

    @field_validator("device_profiles")
    @classmethod
    def _over_the_shipped(cls, value: dict[str, DeviceProfile]) -> dict[str, DeviceProfile]:
        bad = [name for name in value if not re.match(PROFILE_NAME, name)]
        if bad:
            raise ValueError(f"profile names are 1-64 characters of [A-Za-z0-9_.-]: {bad[0]!r}")
        return merged_profiles(value)

    @model_validator(mode="after")
    def _own_services_are_no_cameras(self) -> "Deployment":
        """Camera URLs must never reach GridWatch's own Redis, SQL server, broker or API (docs/RELIABILITY.md)."""
        from ingest.video.urls import own_service_endpoints

        self.ingest.set_own_services(own_service_endpoints(service_endpoints(self)))
        return self


def service_endpoints(dep: "Deployment") -> list[tuple[str, int]]:
    """``(host, port)`` of the Redis, SQL server (not SQLite), MQTT broker and API this deployment uses."""
    from urllib.parse import urlsplit

    out: list[tuple[str, int]] = [(dep.gateway.host, dep.gateway.port)]
    defaults = {"redis": 6379, "rediss": 6380, "mqtt": 1883, "mqtts": 8883, "tcp": 1883, "ssl": 8883,
                "postgresql": 5432, "mysql": 3306}
    from ingest.redis_connect import is_cluster, redis_nodes

    if is_cluster(dep.services.redis_url):
        out += redis_nodes(dep.services.redis_url)
    for url in (dep.services.redis_url, dep.services.mqtt_url, dep.services.sql_url):
        if is_cluster(url):
            continue
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.split("+", 1)[0]
            if parts.hostname and scheme in defaults:
                out.append((parts.hostname, parts.port or defaults[scheme]))
        except ValueError:
            continue
    return out


class ConfigError(Exception):
    """The deployment file is wrong; ``problems`` holds one entry per mistake."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path of a YAML document to its 1-based line, so errors can point at it."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_index(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _field_name(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(data: Any, loc: tuple = (), missing: list[tuple[tuple, str]] | None = None) -> Any:
    """``${NAME}`` in the file's string values becomes the environment variable NAME (``$$`` is a literal ``$``).

    Why: in Kubernetes and compose the file is a ConfigMap anyone with read access sees, while passwords,
    the JWT key and the S3 keys come from Secrets as environment variables. A variable that is not set is
    collected in ``missing`` (key path, message), never an empty password. Comments are not values.
    """
    missing = [] if missing is None else missing
    if isinstance(data, dict):
        return {k: expand_env(v, loc + (k,), missing) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, loc + (i,), missing) for i, v in enumerate(data)]
    if not isinstance(data, str) or "$" not in data:
        return data

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in os.environ:
            missing.append((loc, f"environment variable {name} is not set (${{{name}}})"))
            return ""
        return os.environ[name]

    return ENV_REF.sub(value, data)


def parse_deployment(text: str, file: str = "<string>", base_dir: Path | None = None) -> Deployment:
    """Validate a deployment document; raise ConfigError naming the file, line and field of each problem.

    ``${NAME}`` in values is replaced from the environment first (``expand_env``)."""
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(file, line, "", f"YAML syntax: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "the deployment file must be a mapping")])
    try:
        lines = _line_index(node) if node is not None else {}
        missing: list[tuple[tuple, str]] = []
        data = expand_env(data, (), missing)
        if missing:
            raise ConfigError([ConfigProblem(file, _nearest_line(lines, loc), _field_name(loc), msg) for loc, msg in missing])
        deployment = Deployment.model_validate(data)
    except RecursionError:
        raise ConfigError([ConfigProblem(file, None, "", "a YAML alias refers to itself (recursive structure)")]) from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-union"))))
            problems.append(ConfigProblem(file, _nearest_line(lines, loc), _field_name(loc), err["msg"]))
        raise ConfigError(problems) from None
    deployment.base_dir = (base_dir or Path(".")).resolve()
    deployment.source_file = Path(file)
    deployment.deprecations = deprecations(data, lines, file)
    problems = [ConfigProblem(file, _nearest_line(lines, loc), _field_name(loc), msg) for loc, msg in _semantic_problems(deployment)]
    if problems:
        raise ConfigError(problems)
    return deployment


def deprecations(data: dict, lines: dict[tuple, int], file: str) -> list[ConfigProblem]:
    """Fields of the first schema that still load but have moved: one ``file:line`` note per use.

    ``gridwatch check`` prints them and ``gridwatch run`` logs them, so a deployment file can be brought up to date
    within the release that still reads the old form.
    """
    found: list[ConfigProblem] = []
    cameras = data.get("cameras")
    for i, cam in enumerate(cameras if isinstance(cameras, list) else []):
        for flat, (section, name) in FLAT_CAMERA_FIELDS.items():
            if isinstance(cam, dict) and flat in cam:
                loc = ("cameras", i, flat)
                found.append(ConfigProblem(file, _nearest_line(lines, loc), _field_name(loc),
                                           f"deprecated: write {section}.{name} (the flat field is read until the next release)"))
    ingest = data.get("ingest")
    if isinstance(ingest, dict) and ingest.get("allow_private_sources"):
        loc = ("ingest", "allow_private_sources")
        found.append(ConfigProblem(file, _nearest_line(lines, loc), _field_name(loc),
                                   "deprecated: list the camera networks in ingest.camera_networks "
                                   "(and set ingest.allow_local_files for file sources)"))
    return found


def load_deployment(path: str | os.PathLike | None = None) -> Deployment:
    path = Path(path) if path else DEMO_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_deployment(text, str(path), path.parent)


def _multi_host_problems(dep: Deployment) -> list[tuple[tuple, str]]:
    """SQLite is one file on one machine: roles on other hosts can neither reach it nor share its write lock."""
    if dep.services.multi_host and dep.sql_url.startswith("sqlite"):
        return [(("services", "sql_url"), "services.multi_host is true, but the SQL store is SQLite, which only the "
                                          "processes of one machine can share; use PostgreSQL "
                                          "(postgresql+psycopg://user@host:5432/db) or set multi_host: false")]
    return []


def _semantic_problems(dep: Deployment) -> list[tuple[tuple, str]]:
    """Checks that need more than one field: grid geometry, cameras and devices inside the district, unique ids."""
    from alerts.grids import GridError, load_grid_file  # the grid file is alerts' to read

    problems: list[tuple[tuple, str]] = _multi_host_problems(dep)
    try:
        grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    except GridError as exc:
        return [(("grids", "file"), str(exc))]
    seen: dict[str, int] = {}
    for i, cam in enumerate(dep.cameras):
        if cam.id in seen:
            problems.append((("cameras", i, "id"), f"duplicate camera id {cam.id!r} (also cameras[{seen[cam.id]}])"))
        seen[cam.id] = i
        if grids.base_grid_at(cam.pose.position) is None:
            p = cam.pose.position.wgs84()
            problems.append((("cameras", i, "pose", "position"), f"camera {cam.id!r} at {p.lon:.6f},{p.lat:.6f} is outside every grid"))
    for i, dev in enumerate(dep.devices):
        if grids.base_grid_at(dev.location) is None and grids.fallback_at(dev.location) is None:
            problems.append((("devices", i, "location"), f"device {dev.id!r} is outside the district"))
        if dev.profile is not None and dev.profile not in dep.device_profiles:
            problems.append((("devices", i, "profile"), f"unknown device profile {dev.profile!r} "
                                                        f"(known: {', '.join(sorted(dep.device_profiles))})"))
    codes = {g.code for g in grids.all()}
    names: dict[str, int] = {}
    for i, user in enumerate(dep.gateway.users):
        if user.username in names:
            problems.append((("gateway", "users", i, "username"), f"duplicate username {user.username!r} (also gateway.users[{names[user.username]}])"))
        names[user.username] = i
        for code in user.grids:
            if code not in codes:
                problems.append((("gateway", "users", i, "grids"), f"unknown grid code {code!r}"))
    for i, shift in enumerate(dep.alerts.roster):
        if shift.grid not in codes:
            problems.append((("alerts", "roster", i, "grid"), f"unknown grid code {shift.grid!r}"))
    return problems
