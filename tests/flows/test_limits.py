"""Time limits: a hung training task ends TimedOut; a hung deployment run is cancelled, typed."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client

import flows.limits as limits
from amad.config import build_config
from amad.errors import TimedOutError, exit_code_for
from flows.runtime import STORAGE_RETRIES

pytestmark = pytest.mark.usefixtures("prefect_harness")
NEVER = threading.Event()  # never set: the work below hangs until something stops it


@task
def hangs() -> str:
    while not NEVER.wait(0.05):  # short waits so the timeout can interrupt between them
        pass
    return "unreachable"


@flow
def runs_hanging_training() -> Any:
    cfg = build_config({"timeouts": {"train_s": 0.5}})
    state = limits.train_limited(hangs, cfg)(return_state=True)
    return {"failed": state.is_failed(), "name": state.name}


@flow
def placeholder() -> None:
    """A flow to create a (never started) run of, standing in for a hung deployment run."""


def test_training_past_its_limit_ends_timed_out() -> None:
    assert runs_hanging_training() == {"failed": True, "name": "TimedOut"}


def test_a_deployment_run_past_its_limit_is_cancelled_and_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with get_client(sync_client=True) as client:
        pending = client.create_flow_run(placeholder)
    seen: dict[str, Any] = {}

    def fake_run_deployment(name: str, **kwargs: Any) -> Any:
        seen.update(name=name, **kwargs)
        with get_client(sync_client=True) as client:
            return client.read_flow_run(pending.id)  # still Pending when the wait ends

    monkeypatch.setattr(limits, "run_deployment", fake_run_deployment)
    with pytest.raises(TimedOutError, match="did not finish within 5") as info:
        limits.run_deployment_within("retrain/gpu", {"data_version": "v"}, 5)
    assert seen["timeout"] == 5 and seen["parameters"] == {"data_version": "v"}
    assert isinstance(info.value, TimeoutError) and exit_code_for(info.value) == 13
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(pending.id).state
    assert state is not None and state.type.value in ("CANCELLING", "CANCELLED")


def test_a_finished_deployment_run_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    done = placeholder(return_state=True)
    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(done.state_details.flow_run_id)
    monkeypatch.setattr(limits, "run_deployment", lambda name, **kw: finished)
    assert limits.run_deployment_within("retrain/gpu", {}, 5).id == finished.id


def test_defaults_are_documented_and_storage_tasks_carry_theirs() -> None:
    cfg = build_config({})
    assert (cfg.timeouts.train_s, cfg.timeouts.deployment_s, cfg.timeouts.storage_s) == (
        3600.0, 7200.0, 300.0)  # fmt: skip
    for key in ("train_s", "deployment_s", "storage_s"):
        assert f"``{key}``" in (limits.__doc__ or "")
    assert STORAGE_RETRIES["timeout_seconds"] == cfg.timeouts.storage_s


@task(timeout_seconds=30)
def timed_storage_step() -> str:
    return "done"


@flow
def submits_a_timed_task() -> str:
    return timed_storage_step.submit().result()  # .submit(): on the thread pool, off main


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_a_timed_task_in_a_worker_thread_logs_no_timeout_warning(level: int) -> None:
    """Prefect warns "Timeouts in worker threads cannot interrupt ..." for every timed task on
    a thread pool (every storage task of the fleet's entities); ``flows.limits`` routes it to
    DEBUG: gone at the default level, still there for whoever asks for DEBUG."""
    logger = logging.getLogger(limits.TASK_RUN_LOGGER)
    seen, before = _Records(), logger.level
    logger.addHandler(seen)
    logger.setLevel(level)
    try:
        assert submits_a_timed_task() == "done"
    finally:
        logger.removeHandler(seen)
        logger.setLevel(before)
    notices = [r for r in seen.records if "worker thread" in r.getMessage()]
    assert all(r.levelno == logging.DEBUG for r in notices)
    assert len(notices) == (1 if level == logging.DEBUG else 0), [r.levelname for r in notices]
