"""The whole loop under the Prefect harness: tiny model, local registry, real ingest and DVC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.states import State

import amad.config
from amad import stages
from amad.errors import ArtifactError, ConflictError, NonFiniteLossError
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import ingest
from flows import runtime
from flows.champion_challenger import champion_challenger
from flows.demo_steps import ENTITY
from flows.pipeline import pipeline
from flows.publish import publish
from flows.rebuild_windows import build_window_set, rebuild_windows
from flows.runtime import load_run_config
from flows.score import score
from tests.flows.helpers import PARAMS, make_workspace

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def loop(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    """One workspace for the module: the first pipeline run (two batches) promotes a champion."""
    root = tmp_path_factory.mktemp("loop")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # runs/ (windows, bundles) lands in the test's folder
        overrides, batches = make_workspace(root / "ws")
        cfg = load_run_config(PARAMS, overrides)
        registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name, entity=ENTITY)
        slots: list[int] = []
        real_train = stages.train

        def spy_train(*args: Any, **kwargs: Any) -> Any:
            with get_client(sync_client=True) as client:
                name = runtime.limit_name("amad", ENTITY)
                limit = client.read_global_concurrency_limit_by_name(name)
            slots.append(limit.active_slots)
            return real_train(*args, **kwargs)

        mp.setattr(stages, "train", spy_train)
        resolutions: list[Any] = []
        real_resolve = runtime.resolve_config

        def counting_resolve(*args: Any, **kwargs: Any) -> Any:
            resolutions.append(args)
            return real_resolve(*args, **kwargs)

        mp.setattr(runtime, "resolve_config", counting_resolve)
        mp.setattr(amad.config, "resolve_config", counting_resolve)
        first = pipeline([str(b) for b in batches[:2]], config_path=PARAMS, overrides=overrides)
        mp.setattr(runtime, "resolve_config", real_resolve)
        mp.setattr(amad.config, "resolve_config", real_resolve)
        mp.setattr(stages, "train", real_train)
        yield {
            "overrides": overrides,
            "batches": [str(b) for b in batches],
            "registry": registry,
            "first": first,
            "slots": slots,
            "resolutions": resolutions,
        }


def _artifact_keys(flow_run_ids: set[Any]) -> set[str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(
                    any_=[
                        "champion-vs-challenger",
                        "telemetry-validation",
                        "scores-vs-labels",
                        "pipeline-summary",
                    ]
                )
            )
        )
    return {a.key for a in found if a.flow_run_id in flow_run_ids and a.key}


def test_first_run_ingests_trains_and_promotes(loop: dict[str, Any]) -> None:
    first, registry = loop["first"], loop["registry"]
    mine = first["entities"][ENTITY]
    assert first["accepted"] == 2 and first["promoted"] == [ENTITY], mine["reason"]
    assert first["failed"] == {}
    pointer = registry.champion()
    assert pointer is not None and pointer.version == mine["champion"]
    assert registry.show(pointer.version).data_version == first["data_version"]
    assert loop["slots"] == [1]  # training ran while holding the entity's single retrain slot
    resolved = len(loop["resolutions"])
    assert resolved == 1, f"config resolved {resolved} times in one run"
    model_wide = Registry(registry.store, "amad")
    assert model_wide.champion() is None and model_wide.list_versions() == []


def test_nothing_new_ends_as_no_new_data(loop: dict[str, Any]) -> None:
    state = pipeline([], config_path=PARAMS, overrides=loop["overrides"], return_state=True)
    assert state.is_completed() and state.name == "NoNewData"
    again = pipeline(loop["batches"][:1], config_path=PARAMS, overrides=loop["overrides"],
                     return_state=True)  # fmt: skip
    assert again.name == "NoNewData"  # a re-sent batch is a duplicate, not new data


def test_failed_training_keeps_the_champion(
    loop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, before = loop["registry"], loop["registry"].champion()

    def nan_train(*args: Any, **kwargs: Any) -> Any:
        raise NonFiniteLossError("loss became NaN at epoch 1")

    monkeypatch.setattr(stages, "train", nan_train)
    state = pipeline(
        [], config_path=PARAMS, overrides=loop["overrides"], force=True, return_state=True
    )
    assert state.is_failed() and ENTITY in (state.message or "")
    summary = state.result(raise_on_failure=False)
    assert summary["failed"][ENTITY].startswith(NonFiniteLossError.__name__), summary
    assert summary["entities"] == {}
    assert registry.champion() == before
    assert len(registry.list_versions()) == 1


def test_new_data_retrains_compares_and_scores(loop: dict[str, Any]) -> None:
    first, registry, overrides = loop["first"], loop["registry"], loop["overrides"]
    state = pipeline(loop["batches"][2:], config_path=PARAMS, overrides=overrides,
                     return_state=True)  # fmt: skip
    second, first = state.result(), first["entities"][ENTITY]
    assert second["data_version"] != loop["first"]["data_version"]
    mine = second["entities"][ENTITY]
    assert mine["challenger"] != first["challenger"]
    versions = [v.version for v in registry.list_versions()]
    assert mine["challenger"] in versions and len(versions) == 2
    expected = mine["challenger"] if mine["promoted"] else first["champion"]
    assert registry.champion().version == expected

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    ids = {state.state_details.flow_run_id} | {r.id for r in runs if r.parent_task_run_id}
    assert {
        "champion-vs-challenger",
        "telemetry-validation",
        "scores-vs-labels",
        "pipeline-summary",
    } <= (_artifact_keys(ids))

    out = Path(overrides["publish.local_root"]).parent / "scores-out"
    scored = score(loop["batches"][2], output_uri=str(out), config_path=PARAMS,
                   overrides=overrides)  # fmt: skip
    assert scored["versions"] == {ENTITY: expected} and scored["rows"] > 0
    assert list(out.rglob("scores.parquet"))
    again = score(str(Path(loop["batches"][2]).parent), output_uri=str(out), config_path=PARAMS,
                  overrides=overrides, return_state=True)  # fmt: skip
    assert again.result()["batches"] == ["b0", "b1"]  # the folder's other batches, not b2 again


def test_tampered_version_is_refused(loop: dict[str, Any]) -> None:
    registry, overrides = loop["registry"], loop["overrides"]
    champion = registry.champion()
    store_root = Path(overrides["publish.local_root"])
    weights = next(store_root.rglob(f"{champion.version}/files/weights.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")

    current = ingest.data_version(load_run_config(PARAMS, overrides))
    assert current is not None
    windows = rebuild_windows(current, PARAMS, overrides)
    mine = runtime.for_entity(overrides, ENTITY)
    state = champion_challenger(
        champion.version, windows, config_path=PARAMS, overrides=mine, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(ArtifactError):
        state.result()
    assert registry.champion() == champion


def test_window_sets_are_cached_by_data_version_and_parameters(loop: dict[str, Any]) -> None:
    overrides = loop["overrides"]
    current = ingest.data_version(load_run_config(PARAMS, overrides))
    other = {**overrides, "windows.train_stride": 8}

    context = runtime.run_context(PARAMS, overrides).to_dict()
    changed_context = runtime.run_context(PARAMS, other).to_dict()

    @flow
    def build_three() -> list[State[Any]]:
        return [
            build_window_set(current, context, return_state=True),
            build_window_set(current, context, return_state=True),
            build_window_set(current, changed_context, return_state=True),
        ]

    first, again, changed = build_three()
    assert again.name == "Cached" and again.result() == first.result()
    assert changed.name != "Cached" and changed.result() != first.result()


def test_publish_refuses_when_the_champion_moved_since_the_decision(loop: dict[str, Any]) -> None:
    registry, overrides = loop["registry"], loop["overrides"]
    before = registry.champion()
    stale = {"promote": True, "reason": "test", "champion_version": "someone-else"}
    mine = runtime.for_entity(overrides, ENTITY)
    state = publish(before.version, stale, PARAMS, mine, return_state=True)
    assert state.is_failed()
    with pytest.raises(ConflictError):
        state.result()
    assert registry.champion() == before
    assert publish(before.version, {"promote": False}, PARAMS, mine) is None
