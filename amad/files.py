"""Files, once: content hashes, atomic writes and strict JSON, shared by every module that persists.

- ``sha256_bytes`` / ``sha256_file``: the hex digests that bundles, window sets, dataset manifests,
  registry versions and storage ETags all identify content by, so they must agree everywhere.
- ``atomic_write`` / ``atomic_write_with``: a temp file in the target's folder, then ``os.replace``,
  so a reader sees the old file or the new one, never half of one; the temp file is removed when
  the write fails. ``fsync=True`` makes the bytes durable before the rename (dataset files).
- ``strict_json`` / ``write_json``: sorted keys, NaN and infinities written as ``null`` (JSON has
  no NaN), numpy scalars as Python numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_with(
    path: Path, write: Callable[[IO[bytes]], Any], *, fsync: bool = False
) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write(path: Path, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; returns ``path``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return atomic_write_with(path, lambda fh: fh.write(payload), fsync=fsync)


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, recursively."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def strict_json(
    obj: Any, *, indent: int | None = 2, default: Callable[[Any], Any] | None = None
) -> str:
    """Sorted-key JSON text with NaN/inf as null, ending in a newline."""
    text = json.dumps(
        finite_or_none(obj), indent=indent, sort_keys=True, allow_nan=False, default=default
    )
    return text + "\n"


def write_json(path: Path, obj: Any, *, default: Callable[[Any], Any] | None = None) -> Path:
    """``strict_json(obj)`` written atomically to ``path``."""
    return atomic_write(path, strict_json(obj, default=default))
