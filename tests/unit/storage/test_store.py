"""Store contract on LocalStore and S3Store (moto), conditional writes, error translation."""

from __future__ import annotations

import threading
from pathlib import Path

import botocore.exceptions as bexc
import pytest

from amad.config import PublishConfig
from amad.errors import (
    ConflictError,
    ObjectNotFoundError,
    PermanentStorageError,
    StorageAuthError,
    TransientStorageError,
)
from amad.storage.keys import validate_key
from amad.storage.s3 import S3Store, _translated, translate_client_error
from amad.storage.store import LocalStore, Store, sha256_bytes, store_from_config, store_from_uri


@pytest.fixture(params=["local", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("moto_store")


def test_round_trip_and_listing(store: Store) -> None:
    etag = store.put_bytes("a/b/one.bin", b"1")
    store.put_bytes("a/two.bin", b"22")
    store.put_bytes("z.bin", b"3")
    data, got = store.get_bytes("a/b/one.bin")
    assert data == b"1" and got == etag == store.head("a/b/one.bin")
    assert store.list("a/") == ["a/b/one.bin", "a/two.bin"]
    assert store.list() == ["a/b/one.bin", "a/two.bin", "z.bin"]
    assert store.exists("z.bin") and not store.exists("a/b")
    store.delete("z.bin")
    store.delete("z.bin")  # already gone: no error
    assert not store.exists("z.bin") and store.head("z.bin") is None


def test_missing_key_is_object_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("nope/missing.json")


def test_if_none_match_creates_once(store: Store) -> None:
    store.put_bytes("ptr.json", b"first", if_none_match=True)
    with pytest.raises(ConflictError):
        store.put_bytes("ptr.json", b"second", if_none_match=True)
    assert store.get_bytes("ptr.json")[0] == b"first"


def test_if_match_compare_and_swap(store: Store) -> None:
    etag1 = store.put_bytes("ptr.json", b"v1")
    etag2 = store.put_bytes("ptr.json", b"v2", if_match=etag1)
    assert etag2 != etag1
    with pytest.raises(ConflictError):
        store.put_bytes("ptr.json", b"v3", if_match=etag1)  # stale ETag loses
    assert store.get_bytes("ptr.json") == (b"v2", etag2)


def test_local_store_cas_under_threads(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    etag = store.put_bytes("ptr.json", b"base")
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.put_bytes("ptr.json", f"t{i}".encode(), if_match=etag)
            wins.append(i)
        except ConflictError:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.get_bytes("ptr.json")[0] == f"t{wins[0]}".encode()


def test_local_store_etag_is_sha256_and_hides_internals(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.put_bytes("k", b"abc", if_none_match=True) == sha256_bytes(b"abc")
    assert store.list() == ["k"]  # the lock folder and temp files are not keys
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/./b", "sp ace", ".locks/x"])
def test_invalid_keys_rejected(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)


def _client_error(code: str, status: int) -> bexc.ClientError:
    return bexc.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("PreconditionFailed", 412, ConflictError),
        ("ConditionalRequestConflict", 409, ConflictError),
        ("InvalidAccessKeyId", 403, StorageAuthError),
        ("SignatureDoesNotMatch", 403, StorageAuthError),
        ("AccessDenied", 403, StorageAuthError),
        ("403", 403, StorageAuthError),
        ("NoSuchKey", 404, ObjectNotFoundError),
        ("NoSuchBucket", 404, PermanentStorageError),
        ("SlowDown", 503, TransientStorageError),
        ("InternalError", 500, TransientStorageError),
        ("Whatever", 502, TransientStorageError),
        ("InvalidArgument", 400, PermanentStorageError),
    ],
)
def test_client_error_translation(code: str, status: int, expected: type) -> None:
    err = translate_client_error(_client_error(code, status), "put s3://b/k")
    assert type(err) is expected
    assert "put s3://b/k" in str(err)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bexc.EndpointConnectionError(endpoint_url="http://x"), TransientStorageError),
        (bexc.ConnectTimeoutError(endpoint_url="http://x"), TransientStorageError),
        (bexc.ReadTimeoutError(endpoint_url="http://x"), TransientStorageError),
        (bexc.NoCredentialsError(), StorageAuthError),
        (bexc.ParamValidationError(report="bad"), PermanentStorageError),
    ],
)
def test_botocore_error_translation(exc: Exception, expected: type) -> None:
    with pytest.raises(expected) as info, _translated("get s3://b/k"):
        raise exc
    assert info.value.__cause__ is exc


def test_missing_bucket_is_not_an_empty_store(moto_endpoint: str) -> None:
    store = S3Store("no-such-bucket-x", endpoint_url=moto_endpoint, access_key="a", secret_key="b")
    with pytest.raises(PermanentStorageError) as info:
        store.get_bytes("models/m/champion.json")
    assert not isinstance(info.value, ObjectNotFoundError)


def test_unreachable_endpoint_is_transient() -> None:
    from tests.conftest import free_port

    store = S3Store(
        "bkt",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key="a",
        secret_key="b",
        connect_timeout=1,
        max_attempts=1,
    )
    with pytest.raises(TransientStorageError):
        store.get_bytes("k")


def test_store_from_uri(tmp_path: Path) -> None:
    local = store_from_uri(tmp_path / "r")
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "r").resolve()
    assert isinstance(store_from_uri(f"file://{tmp_path}"), LocalStore)
    s3 = store_from_uri("s3://bucket-x/some/prefix", endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket-x", "some/prefix")
    assert s3.uri == "s3://bucket-x/some/prefix"
    with pytest.raises(ValueError):
        store_from_uri("gs://nope")
    cfg = PublishConfig(store="local", local_root=str(tmp_path / "reg"))
    assert isinstance(store_from_config(cfg), LocalStore)


def test_s3_prefix_is_transparent(moto_endpoint: str) -> None:
    base = S3Store("pfx-bucket", endpoint_url=moto_endpoint, access_key="a", secret_key="b")
    base.ensure_bucket()
    sub = S3Store(
        "pfx-bucket", prefix="team/x", endpoint_url=moto_endpoint, access_key="a", secret_key="b"
    )
    sub.put_bytes("k.json", b"{}")
    assert sub.list() == ["k.json"]
    assert base.list("team/") == ["team/x/k.json"]


def test_ensure_bucket_turns_versioning_on(moto_store: S3Store) -> None:
    assert moto_store.versioning_enabled()
    moto_store.ensure_bucket(versioning=True)  # idempotent
    assert moto_store.versioning_enabled()
