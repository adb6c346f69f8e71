"""Per-entity registries: keyed by model and entity, independent champions, the same CAS."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from amad.errors import ConflictError
from amad.storage.fleet import fleet_rows, format_age
from amad.storage.registry import Registry, list_entities, list_models
from amad.storage.store import LocalStore
from tests.unit.storage.test_registry import make_bundle


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _publish(reg: Registry, tmp_path: Path, seed: str, data_version: str = "dv1") -> str:
    bundle = make_bundle(tmp_path / f"{reg.entity}-{seed}", seed)
    return reg.publish_version(bundle, run_id=f"run-{seed}", data_version=data_version,
                               metrics={"val_recon_error": 0.5})  # fmt: skip


def test_entities_have_their_own_keys_versions_and_champions(
    store: LocalStore, tmp_path: Path
) -> None:
    a, b = (Registry(store, "amad", entity=e) for e in ("pump-a", "pump-b"))
    va = _publish(a, tmp_path, "a1")
    a.promote(va, run_id="r", reason="first")
    assert a.pointer_key == "models/amad/entities/pump-a/champion.json"
    assert b.champion() is None and b.list_versions() == []
    assert Registry(store, "amad").champion() is None  # the model-wide pointer is untouched
    vb = _publish(b, tmp_path, "b1")
    b.promote(vb, run_id="r", reason="first")
    assert a.champion().version == va and b.champion().version == vb
    assert list_entities(store, "amad") == ["pump-a", "pump-b"]
    assert list_models(store) == ["amad"]


def test_racing_promotions_of_one_entity_one_wins_the_other_entity_unaffected(
    store: LocalStore, tmp_path: Path
) -> None:
    a, b = Registry(store, "amad", entity="a"), Registry(store, "amad", entity="b")
    base = _publish(a, tmp_path, "base")
    a.promote(base, run_id="r0", reason="first")
    b.promote(_publish(b, tmp_path, "b"), run_id="r0", reason="first")
    expected = a.champion()
    racers = [_publish(a, tmp_path, f"r{i}") for i in range(2)]
    outcomes: list[str] = []

    def race(version: str) -> None:
        try:
            a.promote(version, run_id=version, reason="race", expected=expected)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=race, args=(v,)) for v in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert a.champion().generation == 2 and b.champion().generation == 1


def test_invalid_entity_ids_are_refused(store: LocalStore) -> None:
    with pytest.raises(ValueError, match="entity"):
        Registry(store, "amad", entity="../escape")


def test_fleet_rows_show_every_entity_with_or_without_a_champion(
    store: LocalStore, tmp_path: Path
) -> None:
    a, b = Registry(store, "amad", entity="a"), Registry(store, "amad", entity="b")
    version = _publish(a, tmp_path, "a1", data_version="dv-a")
    decision = {"evaluation": {"metric": "vus_pr", "challenger": 0.42}}
    a.promote(version, run_id="r", reason="first", decision=decision)
    _publish(b, tmp_path, "b1")  # a challenger that was never promoted
    rows = {r.entity: r for r in fleet_rows(store, "amad")}
    assert rows["a"].champion == version and rows["a"].data_version == "dv-a"
    assert rows["a"].value == pytest.approx(0.42) and rows["a"].age_s is not None
    assert rows["b"].champion is None and rows["b"].versions == 1 and rows["b"].value is None
    by_training = {r.entity: r for r in fleet_rows(store, "amad", metric="val_recon_error")}
    assert by_training["a"].value == pytest.approx(0.5)


@pytest.mark.parametrize(("age", "text"), [(None, "-"), (5, "5s"), (120, "2m"), (7200, "2h"),
                                           (3 * 86400, "3d")])  # fmt: skip
def test_format_age(age: float | None, text: str) -> None:
    assert format_age(age) == text
