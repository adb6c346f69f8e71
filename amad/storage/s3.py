"""S3 (or any S3-compatible server) behind the ``Store`` interface; the one botocore translation.

``S3Store(bucket, prefix=...)`` uses boto3 with short timeouts and few retries; endpoint and
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
import logging
import mimetypes
import os
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from amad.errors import (
    ConflictError,
    ObjectNotFoundError,
    PermanentStorageError,
    StorageAuthError,
    StorageError,
    TransientStorageError,
)
from amad.storage.keys import validate_key

log = logging.getLogger(__name__)

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
        content_type, _ = mimetypes.guess_type(key)
        if content_type:  # a presigned link to an .html page then opens as a page (AWS S3
            kwargs["ContentType"] = content_type  # stores binary/octet-stream otherwise)
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
