"""The retrain trigger is per entity: a batch for one entity retrains that entity only, and a
compaction (a new data version, the same rows) retrains nobody. Real Prefect, DVC, tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import compaction, dataset, ingest, versioning
from amad.telemetry.schema import Contract
from flows.demo_steps import write_fleet_batch
from flows.pipeline import pipeline
from flows.runtime import load_run_config
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

ENTITIES = ["e1", "e2"]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    """Run 1: both entities on two batches. Run 2: a batch for e1 only. Run 3: after compaction."""
    root = tmp_path_factory.mktemp("trigger")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        ws = root / "ws"
        ws.mkdir()
        versioning.init_repo(ws, no_scm=True)
        overrides = tiny_overrides(ws)
        cfg = load_run_config(PARAMS, overrides)
        n = cfg.data.synthetic.train_steps // 2
        both = [
            write_fleet_batch(
                cfg, ws / "in" / f"b{i}.csv", ENTITIES, start_step=i * n, n_steps=n, seed=i
            )
            for i in range(2)
        ]
        first = pipeline([str(b) for b in both], config_path=PARAMS, overrides=overrides)
        counts = [{e: len(registry(cfg, e).list_versions()) for e in ENTITIES}]
        fp_before = dataset.entity_fingerprints(cfg.contract.data_dir)
        only_e1 = write_fleet_batch(cfg, ws / "in" / "b2-e1.csv", ["e1"], start_step=2 * n,
                                    n_steps=n // 2, seed=2)  # fmt: skip
        second = pipeline([str(only_e1)], config_path=PARAMS, overrides=overrides)
        counts.append({e: len(registry(cfg, e).list_versions()) for e in ENTITIES})
        fp_after = dataset.entity_fingerprints(cfg.contract.data_dir)
        version_before = ingest.data_version(cfg)
        done = compaction.compact(cfg.contract.data_dir, Contract(cfg.contract))
        ingest.record_version(cfg, push=False)
        third = pipeline(None, config_path=PARAMS, overrides=overrides, return_state=True)
        counts.append({e: len(registry(cfg, e).list_versions()) for e in ENTITIES})
        yield {
            "cfg": cfg, "first": first, "second": second, "third": third, "compacted": done,
            "fp_before": fp_before, "fp_after": fp_after, "version_before": version_before, "counts": counts,
        }  # fmt: skip


def registry(cfg: Any, entity: str) -> Registry:
    return Registry(store_from_config(cfg.publish), cfg.publish.model_name, entity=entity)


def test_first_run_trains_both_entities(runs: dict[str, Any]) -> None:
    first = runs["first"]
    assert set(first["entities"]) == set(ENTITIES) and first["unchanged"] == []
    for entity in ENTITIES:
        challenger = first["entities"][entity]["challenger"]
        info = registry(runs["cfg"], entity).show(challenger)
        assert info.entity_fingerprint == runs["fp_before"][entity]


def test_a_batch_for_one_entity_retrains_that_entity_only(runs: dict[str, Any]) -> None:
    second, cfg, counts = runs["second"], runs["cfg"], runs["counts"]
    assert second["data_version"] != runs["first"]["data_version"]  # the whole dataset changed
    assert set(second["entities"]) == {"e1"} and second["unchanged"] == ["e2"]
    assert runs["fp_after"]["e2"] == runs["fp_before"]["e2"]
    assert runs["fp_after"]["e1"] != runs["fp_before"]["e1"]
    challenger = second["entities"]["e1"]["challenger"]
    assert registry(cfg, "e1").show(challenger).entity_fingerprint == runs["fp_after"]["e1"]
    assert counts[1]["e1"] > counts[0]["e1"] and counts[1]["e2"] == counts[0]["e2"]


def test_a_compaction_is_a_new_data_version_that_retrains_nobody(runs: dict[str, Any]) -> None:
    third, cfg = runs["third"], runs["cfg"]
    assert runs["compacted"]  # there was something to compact
    assert ingest.data_version(cfg) != runs["version_before"]
    assert dataset.entity_fingerprints(cfg.contract.data_dir) == runs["fp_after"]
    assert third.is_completed() and third.name == "NoNewData"
    assert "no entity's data changed" in (third.message or "")
    assert runs["counts"][2] == runs["counts"][1]
