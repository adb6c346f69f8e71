"""Reliability of the registry against a REAL S3 server (SeaweedFS ``weed mini`` on loopback).

- the server is killed mid-publish: no half version is visible, the champion is unchanged,
  and a rerun of the same publish completes it;
- promotions race from threads: exactly one wins, the others get ``ConflictError``, none lost;
- a bundle file altered in storage: fetch and promote refuse it;
- wrong credentials: ``StorageAuthError`` after a single request (no retry storm).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from amad.devstack.seaweed import SeaweedServer
from amad.errors import (
    ArtifactError,
    ConflictError,
    ObjectNotFoundError,
    PermanentStorageError,
    StorageAuthError,
    TransientStorageError,
)
from amad.storage.registry import Registry
from amad.storage.s3 import S3Store
from amad.storage.store import store_from_uri
from tests.s3server import new_bucket
from tests.unit.storage.test_registry import make_bundle

pytestmark = pytest.mark.slow


def count_requests(store: S3Store, operation: str = "*") -> list[str]:
    """Record every HTTP request (retries included) the store's client sends."""
    sent: list[str] = []

    def hook(request: Any, **_: Any) -> None:
        sent.append(f"{request.method} {request.url}")

    store.client.meta.events.register(f"before-send.s3.{operation}", hook)
    return sent


def test_server_killed_mid_publish_leaves_no_half_version(
    private_s3_server: SeaweedServer, tmp_path: Path
) -> None:
    server = private_s3_server
    bucket = new_bucket(server)
    reg = Registry(server.store(bucket), "m")
    v1 = reg.publish_version(make_bundle(tmp_path / "b1", "1"), run_id="r1")
    reg.promote(v1, run_id="p1", reason="first")

    doomed = server.store(bucket, max_attempts=2, connect_timeout=1)
    puts = 0

    def kill_on_second_file(**_: Any) -> None:
        nonlocal puts
        puts += 1
        if puts == 3:  # id claimed, one bundle file stored; the rest and version.json are not
            server.stop(kill=True)

    doomed.client.meta.events.register("before-send.s3.PutObject", kill_on_second_file)
    bundle2 = make_bundle(tmp_path / "b2", "2")
    with pytest.raises(TransientStorageError):
        Registry(doomed, "m").publish_version(bundle2, run_id="r2")
    assert not server.running()

    server.start()
    reg = Registry(server.store(bucket), "m")
    assert [i.version for i in reg.list_versions()] == [v1]
    assert len(reg._version_ids(complete_only=False)) == 2  # the half version exists, hidden
    champ = reg.champion()
    assert champ is not None and champ.version == v1 and champ.generation == 1

    v2 = reg.publish_version(bundle2, run_id="r2-rerun")
    assert [i.version for i in reg.list_versions()] == [v1, v2]
    assert reg._version_ids(complete_only=False) == [v1, v2]
    reg.verify(v2)
    assert reg.promote(v2, run_id="p2", reason="rerun completed").version == v2


def test_racing_promotions_exactly_one_wins(s3_server: SeaweedServer, tmp_path: Path) -> None:
    bucket = new_bucket(s3_server)
    reg = Registry(s3_server.store(bucket), "m")
    base = reg.publish_version(make_bundle(tmp_path / "base", "base"), run_id="r")
    reg.promote(base, run_id="p0", reason="first")
    cands = [
        reg.publish_version(make_bundle(tmp_path / f"c{i}", f"c{i}"), run_id="r") for i in range(4)
    ]
    seen = reg.champion()
    regs = [Registry(s3_server.store(bucket), "m") for _ in cands]  # one client per thread
    barrier = threading.Barrier(len(cands))
    outcome: dict[str, str] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            regs[i].promote(cands[i], run_id=f"run-{i}", reason="race", expected=seen)
            outcome[cands[i]] = "won"
        except ConflictError:
            outcome[cands[i]] = "conflict"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(cands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, o in outcome.items() if o == "won"]
    assert len(winners) == 1 and list(outcome.values()).count("conflict") == len(cands) - 1
    champ = reg.champion()
    assert champ is not None and (champ.version, champ.generation) == (winners[0], 2)
    assert [e["version"] for e in reg.history()] == [base, winners[0]]


def test_free_running_promotions_lose_nothing(s3_server: SeaweedServer, tmp_path: Path) -> None:
    bucket = new_bucket(s3_server)
    reg = Registry(s3_server.store(bucket), "m")
    cands = [
        reg.publish_version(make_bundle(tmp_path / f"c{i}", f"c{i}"), run_id="r") for i in range(4)
    ]
    regs = [Registry(s3_server.store(bucket), "m") for _ in cands]
    barrier = threading.Barrier(len(cands))
    won: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            regs[i].promote(cands[i], run_id=f"run-{i}", reason="free-for-all")
            won.append(cands[i])
        except ConflictError:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(cands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    champ = reg.champion()
    assert won and champ is not None
    assert champ.generation == len(won)  # every successful move is counted once
    history = reg.history()
    assert [e["generation"] for e in history] == list(range(1, len(won) + 1))
    assert sorted(e["version"] for e in history) == sorted(won)
    assert history[-1]["version"] == champ.version


def test_altered_file_is_refused(s3_server: SeaweedServer, tmp_path: Path) -> None:
    bucket = new_bucket(s3_server)
    store = s3_server.store(bucket)
    reg = Registry(store, "m")
    v1 = reg.publish_version(make_bundle(tmp_path / "b1", "1"), run_id="r1")
    reg.promote(v1, run_id="p1", reason="first")
    v2 = reg.publish_version(make_bundle(tmp_path / "b2", "2"), run_id="r2")
    store.put_bytes(f"models/m/versions/{v2}/files/weights.safetensors", b"altered")
    with pytest.raises(ArtifactError, match="tampered"):
        reg.fetch(v2, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ArtifactError):
        reg.promote(v2, run_id="p2", reason="should not happen")
    champ = reg.champion()
    assert champ is not None and champ.version == v1


@pytest.mark.parametrize("which", ["secret", "access_key"])
def test_wrong_credentials_fail_fast_without_retries(
    s3_server: SeaweedServer, s3_bucket: str, which: str
) -> None:
    creds = s3_server.credentials
    assert creds is not None
    bad = S3Store(
        s3_bucket,
        endpoint_url=s3_server.endpoint_url,
        access_key="AMADWRONGKEY0000000" if which == "access_key" else creds.access_key,
        secret_key="wrong-secret" if which == "secret" else creds.secret_key,
        max_attempts=5,  # even with retries allowed, auth errors are not retried
    )
    sent = count_requests(bad)
    with pytest.raises(StorageAuthError, match="AWS_SECRET_ACCESS_KEY"):
        bad.get_bytes("anything.json")
    assert len(sent) == 1
    with pytest.raises(StorageAuthError):
        bad.head("anything.json")  # HEAD errors have no body, only the 403
    with pytest.raises(StorageAuthError):
        Registry(bad, "m").champion()
    assert len(sent) == 3


def test_versioning_is_on_for_created_buckets(s3_store: S3Store) -> None:
    assert s3_store.versioning_enabled()
    s3_store.put_bytes("k", b"1")
    s3_store.put_bytes("k", b"2")
    versions = s3_store.client.list_object_versions(Bucket=s3_store.bucket, Prefix="k")
    assert len(versions["Versions"]) == 2


def test_store_from_uri_uses_the_environment(s3_env: dict[str, str], s3_bucket: str) -> None:
    store = store_from_uri(f"s3://{s3_bucket}/team")
    assert isinstance(store, S3Store) and store.endpoint_url == s3_env["AWS_ENDPOINT_URL_S3"]
    store.put_bytes("hello.txt", b"hi")
    assert store.get_bytes("hello.txt")[0] == b"hi"
    assert store.list() == ["hello.txt"]


def test_missing_bucket_never_reads_as_no_champion(s3_server: SeaweedServer) -> None:
    reg = Registry(s3_server.store("never-created-bucket"), "m")
    with pytest.raises(PermanentStorageError) as info:
        reg.champion()
    assert not isinstance(info.value, ObjectNotFoundError)
    with pytest.raises(PermanentStorageError):
        reg.store.put_bytes("k", b"x")  # no silent bucket creation, as on AWS
