"""Links a person can open from a browser (a Prefect artifact, an alert, a notification).

``browser_link(uri)`` turns a store location into a URL a browser resolves:

- ``s3://bucket/key`` -> a presigned HTTPS/HTTP GET URL on the S3 endpoint the environment
  names (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, or AWS itself), valid ``expires_s``
  seconds (SigV4 allows at most 7 days);
- ``http(s)://...`` -> unchanged;
- a local path (or ``file://``) -> ``None``: a page served from ``http://`` may not link to
  ``file://`` (browsers refuse it), so callers show the path as text instead of a dead link;
  likewise an ``s3://`` location when there are no credentials to sign with (logged).
"""

from __future__ import annotations

import logging
from pathlib import Path

from botocore.exceptions import NoCredentialsError

from amad.storage.s3 import S3Store

log = logging.getLogger(__name__)

MAX_EXPIRY_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
DEFAULT_EXPIRY_S = MAX_EXPIRY_S


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; ``ValueError`` without a bucket or key."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"an s3:// link needs a bucket and a key: {uri!r}")
    return bucket, key


def browser_link(
    uri: str | Path | None, *, expires_s: int = DEFAULT_EXPIRY_S, store: S3Store | None = None
) -> str | None:
    """A URL for ``uri`` that a browser can open, or ``None`` where there is none (see module).

    ``store`` (optional) is an ``S3Store`` whose client signs the URL; by default one is made
    from the environment's endpoint and credentials. Signing is local: no request is sent.
    """
    if uri is None:
        return None
    text = str(uri)
    if text.startswith(("http://", "https://")):
        return text
    if not text.startswith("s3://"):
        return None
    if not 1 <= expires_s <= MAX_EXPIRY_S:
        raise ValueError(f"expires_s must be within 1..{MAX_EXPIRY_S}, got {expires_s}")
    bucket, key = split_s3_uri(text)
    client = (store or S3Store(bucket)).client
    try:
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
    except NoCredentialsError:  # nothing to sign with: the caller shows the location as text
        log.warning("no S3 credentials to sign a link to %s; shown without a link", text)
        return None
    return url
