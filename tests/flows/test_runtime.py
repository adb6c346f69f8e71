"""The shared flow runtime: retry only transient storage errors, library logs, end states, lock."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.states import Completed

from amad.config import build_config, config_to_dict
from amad.errors import (
    ConfigError,
    DataValidationError,
    PermanentStorageError,
    TransientStorageError,
)
from flows import runtime

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_is_transient_follows_the_cause_chain() -> None:
    try:
        try:
            raise TransientStorageError("timeout")
        except TransientStorageError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert runtime.is_transient(outer)
    assert not runtime.is_transient(PermanentStorageError("404"))
    assert not runtime.is_transient(None)


def _flaky(calls: list[int], error: Exception, fail_times: int):  # type: ignore[no-untyped-def]
    @task(**{**runtime.STORAGE_RETRIES, "retry_delay_seconds": 0})
    def flaky() -> int:
        calls.append(1)
        if len(calls) <= fail_times:
            raise error
        return len(calls)

    return flaky


def test_transient_storage_errors_are_retried() -> None:
    calls: list[int] = []
    flaky = _flaky(calls, TransientStorageError("connection refused"), fail_times=2)

    @flow
    def run() -> int:
        return flaky()

    assert run() == 3
    assert len(calls) == 3


@pytest.mark.parametrize(
    "error", [PermanentStorageError("denied"), DataValidationError("bad batch"), ValueError("bug")]
)
def test_other_errors_fail_at_once(error: Exception) -> None:
    calls: list[int] = []
    flaky = _flaky(calls, error, fail_times=5)

    @flow
    def run() -> int:
        return flaky()

    state = run(return_state=True)
    assert state.is_failed()
    assert len(calls) == 1
    with pytest.raises(type(error)):
        state.result()


def test_amad_logger_lines_reach_the_run_logs() -> None:
    marker = f"library-line-{uuid.uuid4().hex}"

    @flow
    def logs() -> None:
        runtime.route_library_logs()
        logging.getLogger("amad.some_module").info(marker)

    state = logs(return_state=True)
    assert state.is_completed()
    APILogHandler().flush()  # logs are shipped in batches; send them before reading back
    with get_client(sync_client=True) as client:
        lines = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    found = [line for line in lines if marker in line.message]
    assert found, [line.message for line in lines]
    assert found[0].name == "amad.some_module"


def test_no_new_data_is_a_named_completed_state() -> None:
    @flow
    def nothing_to_do():  # type: ignore[no-untyped-def]
        return runtime.no_new_data("data version v1 already trained")

    state = nothing_to_do(return_state=True)
    assert state.is_completed()
    assert state.name == "NoNewData"
    assert Completed().name != state.name


def test_model_lock_creates_a_single_slot_limit() -> None:
    name = f"model-{uuid.uuid4().hex[:8]}"

    @flow
    def locked() -> str:
        with runtime.model_lock(name, timeout_s=30):
            with get_client(sync_client=True) as client:
                limit = client.read_global_concurrency_limit_by_name(runtime.limit_name(name))
            return f"{limit.limit}/{limit.active_slots}"

    assert locked() == "1/1"
    with get_client(sync_client=True) as client:
        after = client.read_global_concurrency_limit_by_name(runtime.limit_name(name))
    assert after.active_slots == 0


def test_a_second_holder_times_out_while_the_first_holds_the_slot() -> None:
    name = f"model-{uuid.uuid4().hex[:8]}"

    @flow
    def contend() -> str:
        with runtime.model_lock(name, timeout_s=30):
            try:
                with runtime.model_lock(name, timeout_s=1):
                    return "overlapped"
            except TimeoutError:
                return "blocked"

    assert contend() == "blocked"


def _active_slots(model: str, entities: list[str]) -> list[int]:
    with get_client(sync_client=True) as client:
        return [
            client.read_global_concurrency_limit_by_name(runtime.limit_name(model, e)).active_slots
            for e in entities
        ]


def test_fleet_locks_hold_every_entity_slot_at_once_and_free_them_after() -> None:
    model = f"model-{uuid.uuid4().hex[:8]}"

    @flow
    def fan_out() -> tuple[bool, list[int]]:
        with runtime.fleet_locks(model, ["a", "b", "c"]) as held:
            return held, _active_slots(model, ["a", "b", "c"])

    assert fan_out() == (True, [1, 1, 1])
    assert _active_slots(model, ["a", "b", "c"]) == [0, 0, 0]


def test_fleet_locks_fall_back_to_one_by_one_when_a_slot_is_busy() -> None:
    model = f"model-{uuid.uuid4().hex[:8]}"

    @flow
    def contend() -> tuple[bool, list[int]]:
        with (
            runtime.model_lock(model, timeout_s=30, entity="b"),  # another run's retrain of b
            runtime.fleet_locks(model, ["a", "b"], wait_s=1) as held,
        ):
            return held, _active_slots(model, ["a", "b"])

    assert contend() == (False, [0, 1])  # a is not held on b's account


def test_retrain_lock_takes_no_slot_its_parent_holds() -> None:
    model = f"model-{uuid.uuid4().hex[:8]}"
    config = config_to_dict(
        build_config({"publish": {"model_name": model}, "data": {"entity": "x"}})
    )

    @flow
    def retrain_under(held: bool) -> int:
        with runtime.retrain_lock(runtime.RunContext(config, slots_held=held), timeout_s=30):
            with get_client(sync_client=True) as client:
                names = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
            if runtime.limit_name(model, "x") not in names:
                return -1
            return _active_slots(model, ["x"])[0]

    assert retrain_under(True) == -1  # not even created
    assert retrain_under(False) == 1
    assert runtime.RunContext.from_dict(runtime.RunContext(config, "r", True).to_dict()).slots_held


def test_current_run_id_is_the_task_run_inside_a_task_else_the_flow_run() -> None:
    @task
    def in_task() -> tuple[str, str]:
        from prefect.runtime import task_run

        return runtime.current_run_id(), str(task_run.get_id())

    @flow
    def in_flow() -> tuple[str, str, tuple[str, str]]:
        from prefect.runtime import flow_run

        return runtime.current_run_id(), str(flow_run.get_id()), in_task()

    mine, flow_id, (task_sees, task_id) = in_flow()
    assert mine == flow_id and task_sees == task_id and task_id != flow_id
    assert runtime.current_run_id() == "local"


def test_a_flow_given_a_missing_config_path_fails_instead_of_using_defaults(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="not found"):
        runtime.load_run_config(str(tmp_path / "parms.yaml"), None)


def test_subflows_in_nested_runs_start_no_heartbeat_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent keeps its heartbeats; a subflow started inside ``nested_runs`` has none."""
    from contextlib import contextmanager

    import prefect.flow_engine as engine_module
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    seen: dict[str, int | None] = {}
    real = engine_module._send_heartbeats

    @contextmanager
    def spy(engine, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen[engine.flow.name] = engine.heartbeat_seconds
        with real(engine, *args, **kwargs):
            yield

    monkeypatch.setattr(engine_module, "_send_heartbeats", spy)

    @flow(name="child")
    def child() -> int:
        return 1

    @flow(name="parent")
    def parent() -> int:
        loud = child()
        with runtime.nested_runs():
            quiet = child.with_options(name="quiet-child")()
        return loud + quiet

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):
        assert parent() == 2
    assert seen == {"parent": 60, "child": 60, "quiet-child": None}
