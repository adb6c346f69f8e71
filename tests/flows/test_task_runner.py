"""``runtime.task_runner``: the runner ``fleet.runner`` names, built without starting anything."""

from __future__ import annotations

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from amad.config import build_config
from amad.errors import ConfigError
from flows import runtime


def test_default_runner_is_prefects_thread_pool_one_entity_at_a_time() -> None:
    runner = runtime.task_runner(build_config())
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 1
    wider = runtime.task_runner(build_config({"fleet": {"threads": 4}}))
    assert isinstance(wider, ThreadPoolTaskRunner) and wider._max_workers == 4


def test_dask_runner_makes_a_loopback_local_cluster_of_the_configured_size() -> None:
    cfg = build_config({"fleet": {"runner": "dask", "dask_workers": 3}})
    runner = runtime.task_runner(cfg)
    assert isinstance(runner, DaskTaskRunner) and runner.address is None
    kwargs = runner.cluster_kwargs
    assert kwargs["host"] == "127.0.0.1" and kwargs["n_workers"] == 3
    assert kwargs["processes"] is True and kwargs["threads_per_worker"] == 1
    assert kwargs["dashboard_address"] is None  # no dashboard port opened


def test_dask_address_connects_to_an_existing_scheduler() -> None:
    address = "tcp://amad-dask-scheduler.amad.svc:8786"
    runner = runtime.task_runner(
        build_config({"fleet": {"runner": "dask", "dask_address": address}})
    )
    assert isinstance(runner, DaskTaskRunner) and runner.address == address
    assert runner.cluster_kwargs == {}


def test_workers_are_told_the_runs_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4242/api"}):
        runner = runtime.task_runner(build_config({"fleet": {"runner": "dask"}}))
    assert runner.cluster_kwargs["env"] == {"PREFECT_API_URL": "http://127.0.0.1:4242/api"}


@pytest.mark.parametrize(
    "fleet",
    [{"dask_address": "tcp://x:8786"}, {"entities": []}, {"entities": ["a", "a"]},
     {"runner": "ray"}],
)  # fmt: skip
def test_bad_fleet_sections_are_config_errors(fleet: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        build_config({"fleet": fleet})


def test_entity_runs_have_their_own_retrain_slot_name() -> None:
    assert runtime.limit_name("amad") == "retrain-amad"
    assert runtime.limit_name("amad", "pump.7") == "retrain-amad--pump-7"
    assert runtime.for_entity({"train.epochs": 1}, "e1") == {"train.epochs": 1, "data.entity": "e1"}
