"""``model.scope: fleet`` through the real pipeline: one pooled fit, decided per entity.

Two entities with data and one listed without: the pooled model is trained once (one bundle per
entity, identical weights, each with its own score statistics and threshold), each entity with
data gets its own registry champion, and the entity without data fails alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from amad.detector.bundle import load_bundle
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import versioning
from flows.demo_steps import write_fleet_batch
from flows.pipeline import pipeline
from flows.runtime import load_run_config
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

ENTITIES = ["e1", "e2"]
GHOST = "ghost"


@pytest.fixture(scope="module")
def fleet_run(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("fleet-scope")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        ws = root / "ws"
        ws.mkdir()
        versioning.init_repo(ws, no_scm=True)
        overrides = {**tiny_overrides(ws), "model.scope": "fleet",
                     "fleet.entities": [*ENTITIES, GHOST]}  # fmt: skip
        cfg = load_run_config(PARAMS, overrides)
        n = cfg.data.synthetic.train_steps // 2
        batches = [write_fleet_batch(cfg, ws / "in" / f"b{i}.csv", ENTITIES, start_step=i * n,
                                     n_steps=n, seed=i) for i in range(2)]  # fmt: skip
        state = pipeline([str(b) for b in batches], config_path=PARAMS, overrides=overrides,
                         return_state=True)  # fmt: skip
        yield {"cfg": cfg, "state": state, "root": root}


def test_one_pooled_model_gives_each_entity_its_own_champion(fleet_run: dict[str, Any]) -> None:
    state, cfg = fleet_run["state"], fleet_run["cfg"]
    summary = state.result(raise_on_failure=False)
    assert state.is_failed() and set(summary["failed"]) == {GHOST}, summary
    assert "DatasetNotFoundError" in summary["failed"][GHOST]
    assert set(summary["entities"]) == set(ENTITIES)
    assert all(rec["scope"] == "fleet" for rec in summary["entities"].values())
    store = store_from_config(cfg.publish)
    bundles = {}
    for entity in ENTITIES:
        registry = Registry(store, cfg.publish.model_name, entity=entity)
        version = summary["entities"][entity]["challenger"]
        dest = fleet_run["root"] / "fetched" / entity
        bundles[entity] = load_bundle(registry.fetch(version, dest))
        if summary["entities"][entity]["promoted"]:
            assert registry.champion().version == version
    a, b = (dict(bundles[e].model.named_parameters()) for e in ENTITIES)
    assert a and all(torch.equal(a[k], b[k]) for k in a)  # one set of weights
    scales = [bundles[e].model.score_channel_scale for e in ENTITIES]  # per-entity statistics
    assert not torch.equal(*scales)
    assert bundles["e1"].threshold.value != bundles["e2"].threshold.value
    runs = {Registry(store, cfg.publish.model_name, entity=e).list_versions()[-1].run_id
            for e in ENTITIES}  # fmt: skip
    assert len(runs) == 1  # both versions come from the one fleet-model run


def test_no_model_wide_champion_in_fleet_scope(fleet_run: dict[str, Any]) -> None:
    cfg = fleet_run["cfg"]
    store = store_from_config(cfg.publish)
    assert Registry(store, cfg.publish.model_name).champion() is None
    assert Registry(store, cfg.publish.model_name, entity=GHOST).champion() is None
    assert Path(fleet_run["root"], "runs", "fleet").is_dir()  # the pooled fit's bundles
