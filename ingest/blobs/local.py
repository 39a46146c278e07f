"""``LocalDirStore``: evidence as files under one folder (the default: ``run/evidence/``).

Writes go to a hidden ``.name.part`` file beside the target and are renamed into place, so a full disk or a crash
leaves either the whole file or nothing a reader can name (``check_key`` refuses dot-names). Several hosts can
share this store only through a shared filesystem (NFS); for multi-host deployments use the S3 store.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from ingest.blobs.store import BlobError, BlobInfo, BlobNotFound, BlobStore, check_key


def _remove(path: Path) -> None:
    """Remove a scratch file if it is there; a path that cannot even exist (a file where a folder is) is fine."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


class LocalDirStore(BlobStore):
    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDirStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def scratch(self, key: str) -> Path:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.part")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self._path(key)
        tmp = target.with_name(f".{target.name}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError as exc:
            _remove(tmp)
            raise BlobError(f"evidence {key} not written to {self.root}: {exc.strerror or exc}") from None

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        path = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.parent == target.parent:
                path.replace(target)  # the usual case: written in scratch() beside its target
            else:
                tmp = target.with_name(f".{target.name}.part")
                try:
                    shutil.copyfile(path, tmp)
                    tmp.replace(target)
                finally:
                    _remove(tmp)
        except OSError as exc:
            raise BlobError(f"evidence {key} not written to {self.root}: {exc.strerror or exc}") from None
        finally:
            _remove(path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no evidence {key}") from None
        except OSError as exc:
            raise BlobError(f"evidence {key} not readable: {exc.strerror or exc}") from None

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise BlobError(f"evidence {key} not deleted: {exc.strerror or exc}") from None
        for folder in path.parents:  # a day folder emptied by retention goes too
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (or gone): its parents are not empty either

    def cleanup_scratch(self, max_age_s: float) -> int:
        cutoff, removed = time.time() - max_age_s, 0
        for path in self.root.rglob(".*.part") if self.root.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed

    def list(self) -> Iterator[BlobInfo]:
        if not self.root.is_dir():
            return
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(folder)
            for name in files:
                if name.startswith("."):
                    continue  # scratch files of writes in progress
                path = base / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # removed meanwhile
                yield BlobInfo(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def describe(self) -> str:
        return f"folder {self.root}"
