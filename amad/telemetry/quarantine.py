"""The quarantine: rejected batches kept, byte for byte, next to the report that rejected them.

``quarantine(data, name, sha, files, quarantine_dir)`` keeps the bytes, unchanged, at
``<quarantine_dir>/<sha>/original/<file name>`` (a folder of their own, so no batch name can
collide with the reports) beside the batch's report files (``ValidationReport.files``).
``quarantine_dir`` is a local folder or ``s3://bucket/prefix``; an existing entry is never
overwritten:

- a folder: the entry is assembled in a temporary folder and moved into place in one
  ``os.replace``;
- S3: every object is written create-only (``put_bytes(..., if_none_match=True)``), the report
  files first and the original last, so the original's presence marks a complete entry; a
  retry after an interruption fills in what is missing and changes nothing that exists. A file
  name with characters an object key may not hold is kept with those replaced by ``_``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from amad.errors import ConflictError
from amad.storage.store import store_from_uri

log = logging.getLogger(__name__)

ORIGINAL = "original"  # quarantine subfolder holding the rejected bytes, unchanged
_MAX_NAME_BYTES = 200
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@,:-]")


def _safe_name(name: str) -> str:
    """The batch's file name, usable as one: no separators, not empty, not over-long."""
    base = Path(name.replace("\\", "/")).name.strip() or "batch"
    if base in (".", "..") or len(base.encode()) > _MAX_NAME_BYTES:
        suffix = Path(base).suffix if len(Path(base).suffix) <= 16 else ""
        return f"batch{suffix}"
    return base


def quarantine(
    data: bytes, name: str, sha: str, files: Mapping[str, bytes], quarantine_dir: str | Path
) -> str:
    """Keep the batch bytes at ``<quarantine_dir>/<sha>/original/`` and its report ``files``
    beside that folder; an existing entry is never overwritten. Returns the entry's location."""
    text = str(quarantine_dir)
    if text.startswith("s3://"):
        return _to_store(data, name, sha, files, text)
    return str(_to_folder(data, name, sha, files, Path(text)))


def _to_folder(
    data: bytes, name: str, sha: str, files: Mapping[str, bytes], quarantine_dir: Path
) -> Path:
    dest = quarantine_dir / sha
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
    for file_name, content in files.items():
        (tmp / file_name).write_bytes(content)
    os.replace(tmp, dest)
    return dest


def _to_store(data: bytes, name: str, sha: str, files: Mapping[str, bytes], uri: str) -> str:
    store = store_from_uri(f"{uri.rstrip('/')}/{sha}")
    original = f"{ORIGINAL}/{_KEY_UNSAFE.sub('_', _safe_name(name))}"
    if any(k.startswith(f"{ORIGINAL}/") for k in store.list(f"{ORIGINAL}/")):
        log.info("batch %s already quarantined at %s", sha[:12], store.uri)
        return store.uri
    for key, content in [*files.items(), (original, data)]:
        try:
            store.put_bytes(key, content, if_none_match=True)
        except ConflictError:
            log.info("%s/%s already there; left as it is", store.uri, key)
    return store.uri
