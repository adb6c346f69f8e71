"""The key rules every ``Store`` shares: safe ``/``-separated relative paths, reserved names.

A key part is letters, digits and ``._=+@,:-``; ``.``/``..``/empty parts are refused. Two names
are reserved for ``LocalStore``'s own bookkeeping and refused as keys: a last part starting with
``TMP_PREFIX`` (its half-written temp files) and a first part ``LOCK_DIR`` (its per-key locks).
"""

from __future__ import annotations

import re

_KEY_PART = re.compile(r"^[A-Za-z0-9._=+@,:-]+$")
TMP_PREFIX = ".tmp-"
LOCK_DIR = ".locks"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative ``a/b/c`` path; ``ValueError`` otherwise."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _KEY_PART.match(p) for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    if parts[-1].startswith(TMP_PREFIX) or parts[0] == LOCK_DIR:
        raise ValueError(f"storage key {key!r} uses a reserved name")
    return key
