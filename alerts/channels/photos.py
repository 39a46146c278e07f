"""Photos from people: proven to be real images, size-limited, re-encoded, saved as evidence.

A photo is accepted only if Pillow can decode it completely as JPEG, PNG or WebP within the byte and
pixel limits (a renamed PDF, a truncated file or a decompression bomb is refused with a message
saying which photo and why). The stored copy is re-encoded as JPEG, rotated upright and no larger
than ``max_side``: that strips EXIF, including the GPS position of the resident's home.
"""
from __future__ import annotations

import io
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ingest.anomaly import Evidence
from ingest.blobs import BlobStore, as_blob_store

ALLOWED = {"JPEG", "PNG", "WEBP", "MPO"}


class PhotoError(ValueError):
    """A photo that is refused; the message names it and says why, in words a resident understands."""


_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF", b"BM": "BMP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def _sniff(data: bytes) -> str | None:
    """The image format a file's first bytes announce, or None when it is no image we know."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES.items() if data.startswith(magic)), None)


def clean_photo(data: bytes, name: str = "照片", *, max_bytes: int = 4_000_000, max_pixels: int = 40_000_000,
                max_side: int = 2048) -> tuple[bytes, int, int]:
    """Validate ``data`` and return (JPEG bytes without metadata, width, height)."""
    if not data:
        raise PhotoError(f"{name}: 文件为空")
    if len(data) > max_bytes:
        raise PhotoError(f"{name}: 文件过大（{len(data) / 1e6:.1f} MB，上限 {max_bytes / 1e6:.1f} MB）")
    # Known signatures first: in a process that imported ultralytics, PIL's open is patched to try to fetch an
    # extra decoder on an unknown format, which must never happen for an upload.
    if _sniff(data) is None:
        raise PhotoError(f"{name}: 不是有效的图片文件（请上传 JPEG、PNG 或 WebP 照片）")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                w, h = probe.size
                if fmt not in ALLOWED:
                    raise PhotoError(f"{name}: 不支持的图片格式 {fmt}，请上传 JPEG、PNG 或 WebP 照片")
                if w * h > max_pixels:
                    raise PhotoError(f"{name}: 图片像素过多（{w}×{h}）")
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGB")
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{name}: 不是有效的图片文件（{type(exc).__name__}）") from None
    if w < 16 or h < 16:
        raise PhotoError(f"{name}: 图片太小（{w}×{h}）")
    img.thumbnail((max_side, max_side))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), img.width, img.height


def save_photo(evidence: BlobStore | Path, jpeg: bytes, channel: str) -> Evidence:
    """Store a cleaned photo as ``reports/YYYYMMDD/…`` in the evidence store; Evidence(kind='photo') for it.

    Raises ``ingest.blobs.BlobError`` (an OSError) when the store refuses it: the report then fails with that
    reason rather than naming a photo that is not there.
    """
    day = datetime.now(timezone.utc).strftime("%Y%m%d")
    key = f"reports/{day}/{channel}-{uuid.uuid4().hex}.jpg"
    as_blob_store(evidence).put(key, jpeg, "image/jpeg")
    return Evidence(kind="photo", path=key, content_type="image/jpeg")
