"""Browser links: an s3:// location becomes a presigned URL that a plain HTTP GET resolves."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amad.storage.links import MAX_EXPIRY_S, browser_link, split_s3_uri
from amad.storage.s3 import S3Store


def test_local_paths_have_no_browser_link(tmp_path: Path) -> None:
    assert browser_link(tmp_path / "page.html") is None
    assert browser_link(f"file://{tmp_path}/page.html") is None
    assert browser_link(None) is None


def test_http_links_pass_through() -> None:
    assert browser_link("https://example.org/x") == "https://example.org/x"


def test_an_s3_uri_needs_a_key_and_a_sane_expiry() -> None:
    with pytest.raises(ValueError, match="bucket and a key"):
        split_s3_uri("s3://bucket")
    with pytest.raises(ValueError, match="expires_s"):
        browser_link("s3://b/k", expires_s=MAX_EXPIRY_S + 1)


def test_a_presigned_link_resolves_on_seaweedfs(s3_store: S3Store) -> None:
    s3_store.put_bytes("site/index.html", b"<h1>batches</h1>")
    url = browser_link(f"s3://{s3_store.bucket}/site/index.html", store=s3_store)
    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"<h1>batches</h1>"
    unsigned = url.split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(unsigned, timeout=10)
    err.value.close()
    assert err.value.code == 403


def test_pages_are_stored_with_their_content_type(moto_store: S3Store) -> None:
    moto_store.put_bytes("site/index.html", b"<h1>x</h1>")
    moto_store.put_bytes("blob", b"\x00")
    head = moto_store.client.head_object
    assert head(Bucket=moto_store.bucket, Key="site/index.html")["ContentType"] == "text/html"
    assert head(Bucket=moto_store.bucket, Key="blob")["ContentType"] != "text/html"


def test_no_credentials_means_no_link_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert browser_link("s3://bucket/site/index.html") is None
    assert "no S3 credentials" in caplog.text
