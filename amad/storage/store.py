"""Object storage behind one small ``Store`` interface: a local folder or an S3 bucket.

Keys are ``/``-separated relative paths. Every store supports conditional writes, which the
registry uses to move its champion pointer safely: ``if_match=ETAG`` writes only when the object
still has that ETag, ``if_none_match=True`` only when the key does not exist yet; a lost race
raises ``ConflictError``.

- ``LocalStore(root)`` writes atomically (temp file + ``os.replace``); its ETag is the sha256 of
  the content and conditional writes hold an exclusive ``flock`` on a per-key lock file, so they
  are safe across threads and processes on one machine.
- ``S3Store(bucket, prefix=...)`` uses boto3 with short timeouts and few retries; endpoint and
  credentials come from arguments or the usual environment variables (``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``).
  Conditional writes are sent as ``If-Match`` / ``If-None-Match: *`` headers.

Every botocore error is translated in exactly one place, ``_translated``: timeouts, connection
failures, throttling and 5xx become ``TransientStorageError`` (worth a retry); rejected
credentials ``StorageAuthError``; a missing key ``ObjectNotFoundError`` (a missing bucket is a
``PermanentStorageError``, so it never reads as an empty registry); 412/409
``ConflictError``; everything else ``PermanentStorageError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from amad.config import PublishConfig
from amad.errors import (
    ConflictError,
    ObjectNotFoundError,
    PermanentStorageError,
    StorageAuthError,
    StorageError,
    TransientStorageError,
)
from amad.files import sha256_bytes

log = logging.getLogger(__name__)

_KEY_PART = re.compile(r"^[A-Za-z0-9._=+@,:-]+$")
_TMP_PREFIX = ".tmp-"
_LOCK_DIR = ".locks"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative ``a/b/c`` path; ``ValueError`` otherwise."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _KEY_PART.match(p) for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    if parts[-1].startswith(_TMP_PREFIX) or parts[0] == _LOCK_DIR:
        raise ValueError(f"storage key {key!r} uses a reserved name")
    return key


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
        lock_dir = self.root / _LOCK_DIR
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
            tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
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
                and not path.name.startswith(_TMP_PREFIX)
                and not rel.startswith(_LOCK_DIR + "/")
                and rel.startswith(prefix)
            ):
                keys.append(rel)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


# --- S3 -------------------------------------------------------------------------------------

_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
        "403",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalError",
        "OperationAborted",
    }
)
_TRANSIENT_BOTOCORE = (
    bexc.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError
    bexc.ReadTimeoutError,
    bexc.ResponseStreamingError,
    bexc.IncompleteReadError,
)


def translate_client_error(exc: bexc.ClientError, what: str) -> StorageError:
    """Map an S3 error response to the typed storage error it means."""
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    msg = f"{what}: {code or status} {err.get('Message', '')}".rstrip()
    if code in _CONFLICT_CODES or status in (409, 412):
        return ConflictError(msg)
    if code in _AUTH_CODES or status in (401, 403):
        return StorageAuthError(f"{msg} (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    if code == "NoSuchBucket":  # a wrong bucket must not read as "no champion yet"
        return PermanentStorageError(f"{msg} (create it first, e.g. with amad stack up)")
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFoundError(msg)
    if code in _TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientStorageError(msg)
    return PermanentStorageError(msg)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """The one place botocore errors become ``StorageError`` subclasses."""
    try:
        yield
    except bexc.ClientError as exc:
        raise translate_client_error(exc, what) from exc
    except _TRANSIENT_BOTOCORE as exc:
        raise TransientStorageError(f"{what}: {exc}") from exc
    except (bexc.NoCredentialsError, bexc.PartialCredentialsError) as exc:
        raise StorageAuthError(f"{what}: {exc}") from exc
    except bexc.BotoCoreError as exc:
        raise PermanentStorageError(f"{what}: {exc}") from exc


def client_config(
    *, connect_timeout: float = 5.0, read_timeout: float = 30.0, max_attempts: int = 3
) -> Config:
    """botocore settings: short timeouts, a bounded number of attempts, path-style addressing."""
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"},
        signature_version="s3v4",
    )


def endpoint_from_env() -> str | None:
    """``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else None (real AWS)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class S3Store:
    """A bucket (optionally under a key prefix) on S3 or any S3-compatible server."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        if client is None:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region
                or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION")
                or "us-east-1",
            )
            client = session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                config=client_config(
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    max_attempts=max_attempts,
                ),
            )
        self.client = client

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        with _translated(f"put {self.uri}/{key}"):
            response = self.client.put_object(**kwargs)
        return str(response["ETag"])

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        with _translated(f"get {self.uri}/{key}"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = response["Body"].read()
        return data, str(response["ETag"])

    def head(self, key: str) -> str | None:
        try:
            with _translated(f"head {self.uri}/{key}"):
                response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFoundError:
            return None
        return str(response["ETag"])

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list(self, prefix: str = "") -> list[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with _translated(f"list {self.uri}/{prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        with _translated(f"delete {self.uri}/{key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def ensure_bucket(self, *, versioning: bool = True) -> None:
        """Create the bucket when missing and switch versioning on (idempotent)."""
        with _translated(f"create bucket {self.bucket}"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except bexc.ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status != 404:
                    raise
                self._create_bucket()
            if versioning:
                self.client.put_bucket_versioning(
                    Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
                )
        log.info("bucket %s ready (versioning %s)", self.bucket, "on" if versioning else "off")

    def _create_bucket(self) -> None:
        region = self.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except bexc.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def versioning_enabled(self) -> bool:
        """True when the bucket's versioning status is ``Enabled``."""
        with _translated(f"get versioning {self.bucket}"):
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        return status == "Enabled"


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
