"""The deployment file's ``services.evidence_store`` section: where evidence goes, and how long it stays."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingest.blobs.local import LocalDirStore
from ingest.blobs.s3 import S3Store
from ingest.blobs.store import BlobStore


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class S3Config(_Strict):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="the bucket (created beforehand)")
    prefix: str = Field("", pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]*/)*$",
                        description="key prefix inside the bucket, ending in '/' (e.g. 'gridwatch/'); '' for none")
    endpoint_url: str | None = Field(None, pattern=r"^https?://",
                                     description="an S3-compatible server (MinIO, Ceph, a cloud's S3 API); none: AWS")
    region: str = "us-east-1"
    access_key_env: str = Field("AWS_ACCESS_KEY_ID", description="environment variable holding the access key "
                                "(keys never go in the deployment file); unset: boto3's usual chain (IAM role, …)")
    secret_key_env: str = Field("AWS_SECRET_ACCESS_KEY", description="environment variable holding the secret key")
    addressing_style: Literal["path", "virtual", "auto"] = Field("path", description="path suits MinIO and most self-hosted servers")
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    read_timeout_s: float = Field(5.0, gt=0, le=300)
    retry_after_s: float = Field(5.0, ge=0, le=600, description="after a failure, writes fail at once for this long "
                                 "(no capture waits on a dead bucket); the evidence of that time is not named")


class RetentionConfig(_Strict):
    """As Frigate: evidence older than ``keep_days`` goes; above ``max_gb`` the oldest goes first, whatever its age."""

    keep_days: float | None = Field(30.0, gt=0, description="evidence older than this is deleted; null: kept by age")
    max_gb: float | None = Field(None, gt=0, description="total evidence kept; the oldest is deleted beyond it; null: no cap")
    sweep_every_s: float = Field(600.0, ge=10, description="how often the sla role sweeps")


class EvidenceStoreConfig(_Strict):
    kind: Literal["local", "s3"] = Field("local", description="local: a folder (one host, or a shared filesystem); "
                                         "s3: an S3-compatible bucket every host reaches (multi-host)")
    dir: str = Field("{run_dir}/evidence", description="the local folder; {run_dir} is replaced by run_dir, "
                     "a relative path is taken from the deployment file's folder")
    s3: S3Config | None = None
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _s3_needs_its_section(self) -> "EvidenceStoreConfig":
        if self.kind == "s3" and self.s3 is None:
            raise ValueError("kind: s3 needs an s3 section (at least its bucket)")
        if self.kind == "local" and self.s3 is not None:
            raise ValueError("an s3 section is given but kind is local: set kind: s3, or remove the section")
        return self


def local_dir(cfg: EvidenceStoreConfig, run_dir: Path, base_dir: Path) -> Path:
    """The local folder ``cfg.dir`` names (also where S3 deployments keep nothing but scratch)."""
    path = Path(cfg.dir.replace("{run_dir}", str(run_dir))).expanduser()
    return path if path.is_absolute() else (Path(base_dir) / path).resolve()


def open_blob_store(cfg: EvidenceStoreConfig, run_dir: Path, base_dir: Path) -> BlobStore:
    """The store the deployment names; nothing is contacted yet (a bucket that is down fails at first use)."""
    if cfg.kind == "s3":
        assert cfg.s3 is not None
        s = cfg.s3
        return S3Store(s.bucket, prefix=s.prefix, endpoint_url=s.endpoint_url, region=s.region,
                       access_key_env=s.access_key_env, secret_key_env=s.secret_key_env,
                       addressing_style=s.addressing_style, connect_timeout_s=s.connect_timeout_s,
                       read_timeout_s=s.read_timeout_s, retry_after_s=s.retry_after_s)
    root = local_dir(cfg, run_dir, base_dir)
    root.mkdir(parents=True, exist_ok=True)
    return LocalDirStore(root)
