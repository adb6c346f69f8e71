"""Registry on a LocalStore: publish, list/show/fetch, promote (CAS), history, rollback, tamper."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from amad.errors import ArtifactError, ConflictError, PromotionError, TransientStorageError
from amad.storage.registry import Registry, list_models
from amad.storage.store import LocalStore, Store
from amad.storage.versions import BUNDLE_MANIFEST


def make_bundle(root: Path, seed: str, *, nested: bool = False) -> Path:
    """A bundle in the artifacts format: files plus manifest.json with sha256 and bytes."""
    root.mkdir(parents=True)
    files = {"weights.safetensors": f"w-{seed}".encode() * 50, "config.yaml": b"model: {}\n"}
    if nested:
        files["extra/notes.txt"] = b"n"
    meta = {}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        meta[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest = {"format": "amad-bundle/1", "files": meta, "seed": seed}
    (root / BUNDLE_MANIFEST).write_text(json.dumps(manifest))
    return root


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "registry")


@pytest.fixture
def reg(store: LocalStore) -> Registry:
    return Registry(store, "demo")


def test_publish_list_show_fetch(reg: Registry, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b1", "1", nested=True)
    version = reg.publish_version(
        bundle, run_id="run-1", metrics={"vus_pr": 0.4}, data_version="d1"
    )
    infos = reg.list_versions()
    assert [i.version for i in infos] == [version]
    info = reg.show(version)
    assert (info.run_id, info.data_version, info.metrics) == ("run-1", "d1", {"vus_pr": 0.4})
    assert set(info.files) == {
        "weights.safetensors",
        "config.yaml",
        "extra/notes.txt",
        BUNDLE_MANIFEST,
    }
    out = reg.fetch(version, tmp_path / "fetched")
    for name in info.files:
        assert (out / name).read_bytes() == (bundle / name).read_bytes()
    assert not (out / "version.json").exists()  # the bundle only, loadable as-is
    assert list_models(reg.store) == ["demo"]


def test_publish_is_idempotent_per_bundle(reg: Registry, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b1", "1")
    v1 = reg.publish_version(bundle, run_id="r1")
    assert reg.publish_version(bundle, run_id="r2") == v1
    v2 = reg.publish_version(make_bundle(tmp_path / "b2", "2"), run_id="r3")
    assert v2 != v1
    assert [i.version for i in reg.list_versions()] == sorted([v1, v2])


def test_publish_refuses_a_bundle_that_does_not_match_its_manifest(
    reg: Registry, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b1", "1")
    (bundle / "config.yaml").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"config\.yaml"):
        reg.publish_version(bundle, run_id="r1")
    assert reg.list_versions() == []


class FlakyStore:
    """Wraps a store and fails every put after ``fail_after`` successful ones."""

    def __init__(self, inner: Store, fail_after: int) -> None:
        self.inner, self.fail_after, self.puts = inner, fail_after, 0
        self.uri = inner.uri

    def put_bytes(self, key: str, data: bytes, **kw: object) -> str:
        if self.puts >= self.fail_after:
            raise TransientStorageError(f"injected failure writing {key}")
        self.puts += 1
        return self.inner.put_bytes(key, data, **kw)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_interrupted_publish_is_invisible_and_a_rerun_completes_it(
    store: LocalStore, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b1", "1")
    flaky = Registry(FlakyStore(store, fail_after=2), "demo")  # type: ignore[arg-type]
    with pytest.raises(TransientStorageError):
        flaky.publish_version(bundle, run_id="r1")
    reg = Registry(store, "demo")
    assert reg.list_versions() == []
    assert len(reg._version_ids(complete_only=False)) == 1  # claimed and half-written, hidden
    version = reg.publish_version(bundle, run_id="r1")
    assert reg._version_ids(complete_only=False) == [version]  # completed, not duplicated
    assert [i.version for i in reg.list_versions()] == [version]
    with pytest.raises(ArtifactError):
        reg.promote("20990101T000000Z-000000000000", run_id="r", reason="x")


def test_promote_history_and_rollback(reg: Registry, tmp_path: Path) -> None:
    versions = [
        reg.publish_version(make_bundle(tmp_path / f"b{i}", str(i)), run_id=f"r{i}")
        for i in range(3)
    ]
    assert reg.champion() is None
    for i, v in enumerate(versions):
        ptr = reg.promote(v, run_id=f"p{i}", reason="better", decision={"promote": True})
        assert (ptr.version, ptr.generation) == (v, i + 1)
    champ = reg.champion()
    assert champ is not None and champ.version == versions[2] and champ.run_id == "p2"
    assert champ.lineage == versions[:2]
    back = reg.rollback(run_id="rb1")
    assert back.version == versions[1] and back.lineage == versions[:1]
    back = reg.rollback(run_id="rb2")
    assert back.version == versions[0] and back.lineage == []
    with pytest.raises(PromotionError):
        reg.rollback(run_id="rb3")
    events = reg.history()
    assert [e["generation"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["action"] for e in events] == ["promote"] * 3 + ["rollback"] * 2
    assert events[1]["previous_version"] == versions[0]
    assert events[0]["decision"] == {"promote": True}


def test_promote_same_version_is_a_no_op(reg: Registry, tmp_path: Path) -> None:
    v = reg.publish_version(make_bundle(tmp_path / "b", "1"), run_id="r")
    first = reg.promote(v, run_id="p1", reason="first")
    again = reg.promote(v, run_id="p2", reason="again")
    assert again.generation == first.generation == 1 and len(reg.history()) == 1


def test_stale_expected_champion_conflicts(reg: Registry, tmp_path: Path) -> None:
    v1, v2, v3 = (
        reg.publish_version(make_bundle(tmp_path / f"b{i}", str(i)), run_id="r") for i in range(3)
    )
    reg.promote(v1, run_id="p1", reason="first")
    seen = reg.champion()
    reg.promote(v2, run_id="p2", reason="moved underneath", expected=seen)
    with pytest.raises(ConflictError, match="champion changed"):
        reg.promote(v3, run_id="p3", reason="stale", expected=seen)
    with pytest.raises(ConflictError):
        reg.promote(v3, run_id="p4", reason="thought there was none", expected=None)
    champ = reg.champion()
    assert champ is not None and champ.version == v2


def test_concurrent_promotions_exactly_one_wins(reg: Registry, tmp_path: Path) -> None:
    base = reg.publish_version(make_bundle(tmp_path / "base", "base"), run_id="r")
    reg.promote(base, run_id="p0", reason="first")
    cands = [
        reg.publish_version(make_bundle(tmp_path / f"c{i}", f"c{i}"), run_id="r") for i in range(4)
    ]
    seen = reg.champion()
    barrier = threading.Barrier(len(cands))
    results: dict[str, str] = {}

    def attempt(v: str) -> None:
        barrier.wait()
        try:
            reg.promote(v, run_id=f"run-{v}", reason="race", expected=seen)
            results[v] = "won"
        except ConflictError:
            results[v] = "conflict"

    threads = [threading.Thread(target=attempt, args=(v,)) for v in cands]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, r in results.items() if r == "won"]
    assert len(winners) == 1 and sorted(results.values()).count("conflict") == 3
    champ = reg.champion()
    assert champ is not None and champ.version == winners[0] and champ.generation == 2
    assert [e["version"] for e in reg.history()] == [base, winners[0]]


def test_tampered_file_blocks_fetch_and_promote(
    reg: Registry, store: LocalStore, tmp_path: Path
) -> None:
    v = reg.publish_version(make_bundle(tmp_path / "b", "1"), run_id="r")
    key = f"models/demo/versions/{v}/files/weights.safetensors"
    store.put_bytes(key, b"evil")
    with pytest.raises(ArtifactError, match=r"weights\.safetensors"):
        reg.fetch(v, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ArtifactError, match="tampered"):
        reg.promote(v, run_id="p", reason="x")
    assert reg.champion() is None


def test_tampered_manifest_is_refused(reg: Registry, store: LocalStore, tmp_path: Path) -> None:
    v = reg.publish_version(make_bundle(tmp_path / "b", "1"), run_id="r")
    store.put_bytes(f"models/demo/versions/{v}/files/{BUNDLE_MANIFEST}", b'{"files": {}}')
    with pytest.raises(ArtifactError):
        reg.verify(v)


def test_missing_history_event_is_repaired(
    reg: Registry, store: LocalStore, tmp_path: Path
) -> None:
    v1, v2 = (
        reg.publish_version(make_bundle(tmp_path / f"b{i}", str(i)), run_id="r") for i in range(2)
    )
    reg.promote(v1, run_id="p1", reason="first")
    store.delete("models/demo/history/00000001.json")  # as if the process died after the CAS
    reg.promote(v2, run_id="p2", reason="second")
    events = reg.history()
    assert [(e["generation"], e["version"]) for e in events] == [(1, v1), (2, v2)]
    assert events[0]["action"] == "recovered"


def test_decisions_are_recorded(reg: Registry) -> None:
    key = reg.record_decision(
        {"promote": False, "reason": "worse", "numbers": {"x": 1.0}}, run_id="r9"
    )
    data = json.loads(reg.store.get_bytes(key)[0])
    assert data["run_id"] == "r9" and data["reason"] == "worse"


def test_invalid_names_rejected(store: LocalStore) -> None:
    with pytest.raises(ValueError):
        Registry(store, "../evil")


def test_fetched_bundle_passes_the_artifacts_check(reg: Registry, tmp_path: Path) -> None:
    """A bundle in amad.detector.bundle' layout survives publish/fetch byte for byte."""
    from amad.detector import bundle as artifacts

    root = tmp_path / "bundle"
    root.mkdir()
    meta = {}
    for name in artifacts.FILES:
        data = f"{name} content".encode()
        (root / name).write_bytes(data)
        meta[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (root / BUNDLE_MANIFEST).write_text(
        json.dumps({"format": artifacts.FORMAT, "files": meta, "n_channels": 3})
    )
    version = reg.publish_version(root, run_id="r")
    fetched = reg.fetch(version, tmp_path / "fetched")
    assert artifacts.verify_bundle(fetched)["files"] == meta


def test_fetch_replaces_an_earlier_fetch_but_not_other_folders(
    reg: Registry, tmp_path: Path
) -> None:
    v = reg.publish_version(make_bundle(tmp_path / "b", "1"), run_id="r")
    out = reg.fetch(v, tmp_path / "out")
    (out / "config.yaml").write_bytes(b"stale")
    assert (reg.fetch(v, out) / "config.yaml").read_bytes() == b"model: {}\n"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ArtifactError, match="not overwriting"):
        reg.fetch(v, precious)
    assert (precious / "thesis.tex").exists()


def test_concurrent_publishes_of_one_bundle_make_one_version(reg: Registry, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "1")
    barrier = threading.Barrier(4)
    got: list[str] = []

    def publish(i: int) -> None:
        barrier.wait()
        got.append(Registry(reg.store, "demo").publish_version(bundle, run_id=f"r{i}"))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 4
    assert reg._version_ids(complete_only=False) == [got[0]]
