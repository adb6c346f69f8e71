"""The quarantine: rejected batches kept, byte for byte, next to the report that rejected them.

``quarantine(data, name, sha, report_dir, quarantine_dir)`` copies the bytes, unchanged, to
``<quarantine_dir>/<sha>/original/<file name>`` (a folder of their own, so no batch name can
collide with the reports) next to the batch's report files. The entry is assembled in a
temporary folder and moved into place in one ``os.replace``; an existing entry is never
overwritten.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

ORIGINAL = "original"  # quarantine subfolder holding the rejected bytes, unchanged
_MAX_NAME_BYTES = 200


def _safe_name(name: str) -> str:
    """The batch's file name, usable as one: no separators, not empty, not over-long."""
    base = Path(name.replace("\\", "/")).name.strip() or "batch"
    if base in (".", "..") or len(base.encode()) > _MAX_NAME_BYTES:
        suffix = Path(base).suffix if len(Path(base).suffix) <= 16 else ""
        return f"batch{suffix}"
    return base


def quarantine(
    data: bytes, name: str, sha: str, report_dir: Path, quarantine_dir: str | Path
) -> Path:
    """Copy the batch bytes to ``<quarantine_dir>/<sha>/original/`` and its report files next
    to that folder; an existing entry is never overwritten."""
    dest = Path(quarantine_dir) / sha
    if dest.exists():
        log.info("batch %s already quarantined at %s", sha[:12], dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{sha}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    (tmp / ORIGINAL).mkdir()
    (tmp / ORIGINAL / _safe_name(name)).write_bytes(data)
    for item in report_dir.iterdir():
        shutil.copy2(item, tmp / item.name)
    os.replace(tmp, dest)
    return dest
