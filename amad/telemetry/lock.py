"""The dataset lock: one writer at a time on a data folder, across processes and threads.

``dataset_lock(data_dir)`` holds an exclusive ``flock`` on ``<data_dir>/.staging/lock`` (a path
DVC ignores) for the whole of an ingest: recovery, staging, commit and ``dvc add``/``push``.
Because every writer holds it, a staging folder found while holding the lock belongs to a
process that died, and recovery may finish or drop it without touching a live ingest. The OS
releases the lock when its holder dies, so a kill -9 never wedges the dataset. The lock is
reentrant within a process (a thread that holds it may take it again), so library calls that
lock on their own can be composed under one outer lock. Waiting longer than ``timeout_s``
raises ``BusyError``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amad.errors import BusyError
from amad.telemetry.dataset import STAGING

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
DEFAULT_TIMEOUT_S = 900.0
_POLL_S = 0.05

_guard = threading.Lock()
_locks: dict[str, threading.RLock] = {}
_depth: dict[str, int] = {}
_fds: dict[str, int] = {}


def lock_path(data_dir: str | Path) -> Path:
    """Where the lock file of ``data_dir`` lives (inside the DVC-ignored staging folder)."""
    return Path(data_dir) / STAGING / LOCK_NAME


def _thread_lock(key: str) -> threading.RLock:
    with _guard:
        return _locks.setdefault(key, threading.RLock())


def _acquire_file(path: Path, timeout_s: float) -> int:
    """An open descriptor holding an exclusive flock on ``path``; ``BusyError`` on timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout_s
    logged = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise BusyError(
                    f"{path.parent.parent} is locked by another ingest "
                    f"(waited {timeout_s:.0f} s); retry later"
                ) from None
            if not logged:
                log.info("waiting for the dataset lock %s", path)
                logged = True
            time.sleep(_POLL_S)


@contextmanager
def dataset_lock(data_dir: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive, reentrant lock of ``data_dir`` (see the module docstring)."""
    path = lock_path(data_dir)
    key = str(path.resolve())
    thread_lock = _thread_lock(key)
    got = thread_lock.acquire(timeout=timeout_s) if timeout_s > 0 else thread_lock.acquire(False)
    if not got:
        raise BusyError(f"{data_dir} is locked by another thread of this process")
    try:
        if _depth.get(key, 0) == 0:
            _fds[key] = _acquire_file(path, timeout_s)
        _depth[key] = _depth.get(key, 0) + 1
        try:
            yield
        finally:
            _depth[key] -= 1
            if _depth[key] == 0:
                os.close(_fds.pop(key))  # closing the descriptor releases the flock
    finally:
        thread_lock.release()
