"""Object storage behind one small ``Store`` interface: a local folder or an S3 bucket.

Keys are ``/``-separated relative paths (``amad.storage.keys``). Every store supports conditional
writes, which the registry uses to move its champion pointer safely: ``if_match=ETAG`` writes
only when the object still has that ETag, ``if_none_match=True`` only when the key does not exist
yet; a lost race raises ``ConflictError``.

- ``LocalStore(root)`` writes atomically (temp file + ``os.replace``); its ETag is the sha256 of
  the content and conditional writes hold an exclusive ``flock`` on a per-key lock file, so they
  are safe across threads and processes on one machine.
- ``S3Store`` (``amad.storage.s3``) is the bucket implementation, with the one place botocore
  errors are translated.

``store_from_uri`` picks the implementation from a URI, ``store_from_config`` from the publish
section.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from amad.config import PublishConfig
from amad.errors import ConflictError, ObjectNotFoundError, PermanentStorageError
from amad.files import sha256_bytes
from amad.storage.keys import LOCK_DIR, TMP_PREFIX, validate_key
from amad.storage.s3 import S3Store


@runtime_checkable
class Store(Protocol):
    """What the registry, flows and scoring need from object storage."""

    uri: str

    def put_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Write ``data``; return the new ETag. ``ConflictError`` if a condition fails."""
        ...

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        """Content and ETag; ``ObjectNotFoundError`` when missing."""
        ...

    def head(self, key: str) -> str | None:
        """The ETag, or None when the key does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """True when the key exists."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove a key (no error when it is already gone)."""
        ...


class LocalStore:
    """A folder used as an object store (tests, laptops, the embedded default)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_dir = self.root / LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock_path = lock_dir / (sha256_bytes(key.encode())[:32] + ".lock")
        with open(lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def put_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        path = self._path(key)
        with self._locked(key) if (if_match or if_none_match) else contextlib.nullcontext():
            if if_none_match and path.exists():
                raise ConflictError(f"{self.uri}/{key} already exists")
            if if_match is not None:
                current = self.head(key)
                if current != if_match:
                    raise ConflictError(f"{self.uri}/{key} changed (ETag {current} != {if_match})")
            self._write_atomic(path, data)
        return sha256_bytes(data)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise PermanentStorageError(f"cannot write {path}: {exc}") from exc

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(f"{self.uri}/{key} does not exist") from exc
        except OSError as exc:
            raise PermanentStorageError(f"cannot read {path}: {exc}") from exc
        return data, sha256_bytes(data)

    def head(self, key: str) -> str | None:
        try:
            return self.get_bytes(key)[1]
        except ObjectNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if (
                path.is_file()
                and not path.name.startswith(TMP_PREFIX)
                and not rel.startswith(LOCK_DIR + "/")
                and rel.startswith(prefix)
            ):
                keys.append(rel)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def store_from_uri(uri: str | Path, **s3_kwargs: Any) -> Store:
    """``s3://bucket/prefix`` -> ``S3Store``; ``file:///path`` or a plain path -> ``LocalStore``."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {text!r}")
        return S3Store(bucket, prefix=prefix, **s3_kwargs)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        raise ValueError(f"unsupported store URI {text!r} (use s3://bucket/prefix or a path)")
    return LocalStore(text)


def store_uri_from_config(cfg: PublishConfig) -> str:
    """The store URI the publish section describes."""
    if cfg.store == "s3":
        return f"s3://{cfg.bucket}/{cfg.prefix}".rstrip("/")
    return str(Path(cfg.local_root) / cfg.prefix) if cfg.prefix else cfg.local_root


def store_from_config(cfg: PublishConfig) -> Store:
    """The store the publish section describes (S3 endpoint/credentials from the environment)."""
    return store_from_uri(store_uri_from_config(cfg))
