"""``S3Store``: evidence as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, OSS/COS/OBS S3 APIs).

Why: with several hosts, the video worker that saw an event and the API node an operator asks are different
machines; a bucket every host reaches is the store they share (as Frigate's users do with a NAS, but without a
shared filesystem). The client is boto3's, built lazily per process (a video worker process gets the store by
pickling, the client is not pickled) and shared by threads (boto3 clients are thread-safe).

Outages: the timeouts are short and one attempt is made, and after a failure the store answers "unavailable" at
once for ``retry_after_s`` instead of making every capture wait for the network again — a camera's analysis
thread must not stall behind a dead bucket. Callers then name no evidence they could not store.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.blobs.store import BlobError, BlobInfo, BlobNotFound, BlobStore, check_key

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store(BlobStore):
    kind = "s3"

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key_env: str = "AWS_ACCESS_KEY_ID", secret_key_env: str = "AWS_SECRET_ACCESS_KEY",
                 addressing_style: str = "path", connect_timeout_s: float = 2.0, read_timeout_s: float = 5.0,
                 retry_after_s: float = 5.0):
        self.bucket, self.prefix, self.endpoint_url, self.region = bucket, prefix, endpoint_url, region
        self.access_key_env, self.secret_key_env = access_key_env, secret_key_env
        self.addressing_style = addressing_style
        self.connect_timeout_s, self.read_timeout_s, self.retry_after_s = connect_timeout_s, read_timeout_s, retry_after_s
        self._client: Any = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""

    # -- pickling: the client and its lock stay in the process that made them -------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_client=None, _lock=None, _down_until=0.0, _down_reason="")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store({self.describe()!r})"

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                access, secret = os.environ.get(self.access_key_env), os.environ.get(self.secret_key_env)
                creds = {"aws_access_key_id": access, "aws_secret_access_key": secret} if access and secret else {}
                cfg = Config(connect_timeout=self.connect_timeout_s, read_timeout=self.read_timeout_s,
                             retries={"max_attempts": 1, "mode": "standard"},
                             s3={"addressing_style": self.addressing_style})
                self._client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url,
                                                              region_name=self.region, config=cfg, **creds)
            return self._client

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, what: str, key: str, fn: Any) -> Any:
        """Run one S3 request; missing → BlobNotFound, any other failure → BlobError and the fail-fast window."""
        from botocore.exceptions import BotoCoreError, ClientError

        if time.monotonic() < self._down_until:
            raise BlobError(f"evidence store {self.describe()} unavailable ({self._down_reason}); {what} {key} skipped")
        try:
            return fn(self.client())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise BlobNotFound(f"no evidence {key}") from None
            raise self._down(f"{what} {key}: {code or exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise self._down(f"{what} {key}: {type(exc).__name__}: {exc}") from None

    def _down(self, reason: str) -> BlobError:
        self._down_reason = reason
        self._down_until = time.monotonic() + self.retry_after_s
        return BlobError(f"evidence store {self.describe()}: {reason}")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        name = self._name(key)
        self._call("put", key, lambda c: c.put_object(Bucket=self.bucket, Key=name, Body=data, ContentType=content_type))

    def scratch(self, key: str) -> Path:
        check_key(key)
        fd, path = tempfile.mkstemp(prefix="gw-evidence-", suffix=Path(key).suffix)
        os.close(fd)
        return Path(path)

    def get(self, key: str) -> bytes:
        name = self._name(key)
        return self._call("get", key, lambda c: c.get_object(Bucket=self.bucket, Key=name)["Body"].read())

    def delete(self, key: str) -> None:
        name = self._name(key)
        self._call("delete", key, lambda c: c.delete_object(Bucket=self.bucket, Key=name))

    def list(self) -> Iterator[BlobInfo]:
        def pages(c: Any) -> list[dict]:
            return list(c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix))

        for page in self._call("list", self.prefix or "(bucket)", pages):
            for obj in page.get("Contents", []):
                yield BlobInfo(obj["Key"][len(self.prefix):], int(obj["Size"]), obj["LastModified"].timestamp())

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"
