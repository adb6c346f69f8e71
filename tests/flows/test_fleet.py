"""A fleet on a real two-worker ``distributed.LocalCluster``: per-entity retrains run on both
workers, a failing entity blocks no other, and each entity is scored by its own champion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from amad.detector.bundle import load_bundle
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import versioning
from flows.demo_steps import write_fleet_batch
from flows.pipeline import pipeline
from flows.runtime import limit_name, load_run_config
from flows.score import score
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

ENTITIES = ["e1", "e2", "e3"]
GHOST = "ghost"  # listed in fleet.entities but has no data: its retrain fails


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("fleet")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # runs/ lands here; the cluster's worker processes start here too
        ws = root / "ws"
        ws.mkdir()
        versioning.init_repo(ws, no_scm=True)
        overrides = {
            **tiny_overrides(ws),
            "fleet.runner": "dask",
            "fleet.dask_workers": 2,
            "fleet.entities": [*ENTITIES, GHOST],
        }
        cfg = load_run_config(PARAMS, overrides)
        n = cfg.data.synthetic.train_steps // 2
        batches = [
            write_fleet_batch(
                cfg, ws / "in" / f"b{i}.csv", ENTITIES, start_step=i * n, n_steps=n, seed=i
            )
            for i in range(2)
        ]
        state = pipeline([str(b) for b in batches], config_path=PARAMS, overrides=overrides,
                         return_state=True)  # fmt: skip
        yield {"cfg": cfg, "overrides": overrides, "state": state, "ws": ws, "n": n}


def test_entities_retrain_on_both_workers_and_one_failure_blocks_no_other(
    fleet: dict[str, Any],
) -> None:
    state, cfg = fleet["state"], fleet["cfg"]
    assert state.is_failed() and GHOST in (state.message or "")
    summary = state.result(raise_on_failure=False)
    assert summary["runner"] == "dask"
    assert set(summary["failed"]) == {GHOST}
    assert "DatasetNotFoundError" in summary["failed"][GHOST]
    assert summary["promoted"] == ENTITIES
    workers = {rec["worker"] for rec in summary["entities"].values()}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers), workers
    store = store_from_config(cfg.publish)
    for entity in ENTITIES:
        rec = summary["entities"][entity]
        registry = Registry(store, "amad", entity=entity)
        assert registry.champion().version == rec["champion"] == rec["challenger"]
        assert rec["evaluation"]["eval_id"].startswith(f"{entity}:")  # its own window set
    assert Registry(store, "amad", entity=GHOST).champion() is None
    assert Registry(store, "amad").champion() is None  # nothing model-wide


def _fan_out_runs(pipeline_run: Any) -> tuple[list[Any], list[Any]]:
    """The pipeline run's fleet-retrain flow run(s), and the flow runs started under them."""
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[pipeline_run])))  # fmt: skip
        fan_out = [r for r in children if client.read_flow(r.flow_id).name == "fleet-retrain"]
        below = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[r.id for r in fan_out])))  # fmt: skip
    return fan_out, below


def _task_runs(flow_run: Any, want: int, name: str = "retrain-entity") -> list[Any]:
    """The flow run's task runs, once ``want`` of ``name`` are recorded (they arrive as events)."""
    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run])), limit=200)  # fmt: skip
        if sum(r.name.startswith(name) for r in runs) >= want:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"{want} {name} task runs not recorded: {[r.name for r in runs]}")
        time.sleep(0.5)


def test_entities_run_as_tasks_of_the_fan_out_with_no_flow_run_each(
    fleet: dict[str, Any],
) -> None:
    state, cfg = fleet["state"], fleet["cfg"]
    fan_out, below = _fan_out_runs(state.state_details.flow_run_id)
    assert len(fan_out) == 1 and below == []  # no entity-pipeline, retrain, publish... runs
    runs = _task_runs(fan_out[0].id, want=len(ENTITIES) + 1)
    per_entity = {r.id: r for r in runs if r.name.startswith("retrain-entity")}
    trained = [r for r in runs if r.name.startswith("train-bundle")]
    assert len(per_entity) == len(ENTITIES) + 1 and len(trained) == len(ENTITIES)
    store = store_from_config(cfg.publish)
    for entity in ENTITIES:  # provenance: the version names the task run that made it
        (version,) = Registry(store, "amad", entity=entity).list_versions()
        assert version.run_id in {str(i) for i in per_entity}, version
    with get_client(sync_client=True) as client:  # the fleet's slots were all released
        for entity in [*ENTITIES, GHOST]:
            limit = client.read_global_concurrency_limit_by_name(limit_name("amad", entity))
            assert limit.active_slots == 0


def test_each_entity_is_scored_by_its_own_champion_down_to_one_row(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    cfg, ws, n = fleet["cfg"], fleet["ws"], fleet["n"]
    overrides = {**fleet["overrides"], "fleet.runner": "default"}
    start = 2 * n
    hour = write_fleet_batch(cfg, ws / "live" / "h0.csv", ENTITIES, start_step=start,
                             n_steps=60, seed=7)  # fmt: skip
    one = write_fleet_batch(cfg, ws / "live2" / "h1.csv", [*ENTITIES, "new-unit"],
                            start_step=start + 60, n_steps=1, seed=8)  # fmt: skip
    out = tmp_path / "scores"
    first = score(str(hour), output_uri=str(out), config_path=PARAMS, overrides=overrides)
    assert first["rows"] == 60 * len(ENTITIES)
    second = score(str(one), output_uri=str(out), config_path=PARAMS, overrides=overrides)
    assert second["rows"] == len(ENTITIES)  # one row each, scored with the kept context
    assert second["unscored"]["h1"] == {"new-unit": "no champion"}
    scored = pd.read_parquet(next(out.rglob("h1/scores.parquet")))
    hour_rows, one_rows = pd.read_csv(hour), pd.read_csv(one)
    length = cfg.windows.length
    columns = [c.name for c in cfg.contract.columns]
    expected = {}
    for entity in ENTITIES:
        registry = Registry(store_from_config(cfg.publish), "amad", entity=entity)
        bundle = load_bundle(registry.fetch(registry.champion().version, tmp_path / entity))
        series = pd.concat([hour_rows[hour_rows.entity == entity].iloc[-(length - 1) :],
                            one_rows[one_rows.entity == entity]])  # fmt: skip
        expected[entity] = bundle.score(series[columns].to_numpy(np.float32)).scores[-1]
    got = dict(zip(scored["entity"], scored["score"], strict=True))
    assert got == pytest.approx(expected, rel=1e-5)
    assert len({round(float(v), 6) for v in expected.values()}) == len(ENTITIES)  # distinct models
