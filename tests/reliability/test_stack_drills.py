"""Drills on the local S3 server (issue 13, item 1): only SigV4-signed S3 gets in; files private."""

from __future__ import annotations

import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amad.devstack.seaweed import SeaweedServer


def status_of(method: str, url: str, data: bytes | None = None) -> int:
    """The HTTP status of an unauthenticated request (no SigV4, no JWT)."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_filer_and_unsigned_s3_requests_are_refused(
    s3_server: SeaweedServer, s3_bucket: str
) -> None:
    store = s3_server.store(s3_bucket)
    store.put_bytes("models/m/champion.json", b'{"version": "good"}')
    filer = f"http://127.0.0.1:{s3_server.ports['filer']}/buckets/{s3_bucket}/models/m"
    s3 = f"{s3_server.endpoint_url}/{s3_bucket}/models/m"
    attempts = [
        ("GET", f"{filer}/champion.json", None),
        ("GET", f"{filer}/", None),
        ("PUT", f"{filer}/champion.json", b'{"version": "forged"}'),
        ("POST", f"{filer}/planted.json", b"{}"),
        ("DELETE", f"{filer}/champion.json", None),
        ("GET", f"{s3}/champion.json", None),
        ("PUT", f"{s3}/champion.json", b'{"version": "forged"}'),
    ]
    for method, url, data in attempts:
        assert status_of(method, url, data) in (401, 403), (method, url)
    assert store.get_bytes("models/m/champion.json")[0] == b'{"version": "good"}'
    assert not store.exists("models/m/planted.json")


@pytest.mark.slow
def test_server_state_is_private_to_its_owner(s3_server: SeaweedServer) -> None:
    for folder in (s3_server.config_dir, s3_server.data_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for secret in (s3_server.identities_path, s3_server.security_path):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # weed runs with umask 077, but chmods a few volume files (.vif) to 0644 itself: those are
    # still out of reach, since no other user may enter the 0700 data folder above them
    writable = [p for p in Path(s3_server.data_dir).rglob("*")
                if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o022]  # fmt: skip
    assert writable == []
