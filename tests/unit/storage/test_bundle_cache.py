"""The fetch cache: a version already on disk is reused only while it matches its record."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.errors import ArtifactError
from amad.storage.bundle_cache import fetch_cached, fetch_entity_champions
from amad.storage.registry import Registry
from amad.storage.store import LocalStore
from amad.storage.versions import Versions
from tests.unit.storage.test_registry import make_bundle


class CountingRegistry(Registry):
    """A registry that counts its downloads."""

    fetches = 0

    def fetch(self, version: str, dest: str | Path) -> Path:
        self.fetches += 1
        return Versions.fetch(self, version, dest)


@pytest.fixture
def published(tmp_path: Path) -> tuple[CountingRegistry, str]:
    reg = CountingRegistry(LocalStore(tmp_path / "registry"), "demo", entity="e1")
    return reg, reg.publish_version(make_bundle(tmp_path / "b", "1"), run_id="r")


def test_a_cached_version_is_reused_and_a_changed_one_fetched_again(
    published: tuple[CountingRegistry, str], tmp_path: Path
) -> None:
    reg, version = published
    dest = tmp_path / "cache" / version
    first = fetch_cached(reg, version, dest)
    assert fetch_cached(reg, version, dest) == first and reg.fetches == 1  # second: no download
    weights = dest / "weights.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"tampered")  # same name, other bytes: fetched again, restored
    fetch_cached(reg, version, dest)
    assert reg.fetches == 2 and weights.read_bytes() == good
    weights.unlink()  # a file less: fetched again
    fetch_cached(reg, version, dest)
    assert reg.fetches == 3 and weights.read_bytes() == good


def test_a_cache_folder_holding_other_files_is_refused(
    published: tuple[CountingRegistry, str], tmp_path: Path
) -> None:
    reg, version = published
    dest = fetch_cached(reg, version, tmp_path / "cache" / version)
    (dest / "stray.txt").write_text("not a bundle file")
    with pytest.raises(ArtifactError, match="holds other files"):
        fetch_cached(reg, version, dest)


def test_an_unknown_version_is_an_artifact_error(
    published: tuple[CountingRegistry, str], tmp_path: Path
) -> None:
    reg, _ = published
    with pytest.raises(ArtifactError):
        fetch_cached(reg, "20260101T000000Z-000000000000", tmp_path / "cache" / "x")


def test_a_fleet_fetch_gets_each_champion_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "registry")
    versions = {}
    for entity in ["e1", "e2", "e3"]:
        reg = Registry(store, "demo", entity=entity)
        versions[entity] = reg.publish_version(make_bundle(tmp_path / entity, entity), run_id="r")
        if entity != "e3":  # e3: published, never promoted
            reg.promote(versions[entity], run_id="r", reason="test")
    fetched: list[str] = []
    plain = Versions.fetch

    def counting(self: Versions, version: str, dest: str | Path) -> Path:
        fetched.append(version)
        return plain(self, version, dest)

    monkeypatch.setattr(Versions, "fetch", counting)
    first = fetch_entity_champions(store, "demo", tmp_path / "cache", threads=2)
    assert {e: c["version"] for e, c in first.items()} == {
        "e1": versions["e1"],
        "e2": versions["e2"],
    }
    for entity, champion in first.items():  # each entity's own bundle, not another's
        assert (
            f"w-{entity}".encode()
            in (Path(champion["bundle_dir"]) / "weights.safetensors").read_bytes()
        )
    assert fetch_entity_champions(store, "demo", tmp_path / "cache") == first
    assert sorted(fetched) == sorted([versions["e1"], versions["e2"]])  # the second run: none
