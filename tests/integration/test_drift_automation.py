"""Drift acts, end to end on a real Prefect server (``amad stack up --server``): the retrain
automation turns a storm of ``amad.drift.detected`` events into exactly one run of the real
``pipeline/nightly`` deployment per cool-down window, and ignores drift a retrain already follows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from amad.devstack.seaweed import find_weed
from amad.devstack.stack import stack_down, stack_up

pytestmark = pytest.mark.slow

COOLDOWN_S = 40.0

_EMIT = """
import json, sys
from prefect.events.worker import EventsWorker
from flows.drift import emit_drift
findings, follows = json.loads(sys.argv[1]), sys.argv[2] == "true"
for finding in findings:
    emit_drift(finding, "amad", follows)
EventsWorker.drain_all()
print(len(findings))
"""


def _findings(tag: str, n: int) -> list[dict[str, Any]]:
    return [
        {"subject": f"m{i:02d}", "statistic": "mean", "size": 9.0 + i, "threshold": 4.0,
         "batch": f"{tag}-batch", "data_version": "d-1", "entities": ["unit-1"],
         "model_version": None, "checks": {}, "key": f"{tag}-batch/m{i:02d}"}
        for i in range(n)
    ]  # fmt: skip


def _emit(api_url: str, findings: list[dict[str, Any]], *, follows: bool = False) -> None:
    # a fresh process: this one's events worker may be bound to another API (the flow harness)
    env = {**os.environ, "PREFECT_API_URL": api_url}
    subprocess.run(
        [sys.executable, "-c", _EMIT, json.dumps(findings), "true" if follows else "false"],
        env=env, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


def _runs(deployment: UUID) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment]))
        )
    return len(runs)


def _wait_for(deployment: UUID, n: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := _runs(deployment)) < n and time.monotonic() < deadline:
        time.sleep(1.0)
    return count


def _nightly_deployment() -> UUID:
    """A real ``pipeline/nightly`` deployment (its runs stay Scheduled: no worker here)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("pipeline")
        return client.create_deployment(flow_id, "nightly", entrypoint="flows/pipeline.py:pipeline")


def test_drift_storm_starts_one_retrain_per_cooldown(tmp_path: Path) -> None:
    try:
        find_weed()
    except Exception as exc:
        pytest.skip(str(exc))
    from prefect.automations import Automation
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.notify_setup import RETRAIN_AUTOMATION, deployment_id, ensure_retrain_automation

    root = tmp_path / "stack"
    try:
        api = stack_up(root, server=True)["prefect"]["api_url"]
        with temporary_settings(updates={PREFECT_API_URL: api}):
            created = _nightly_deployment()
            assert deployment_id("pipeline/nightly") == created
            ensure_retrain_automation(created, COOLDOWN_S)
            ensure_retrain_automation(created, COOLDOWN_S)  # idempotent: still one automation
            automation = Automation.read(name=RETRAIN_AUTOMATION, _sync=True)  # type: ignore[call-overload]
            trigger = automation.trigger
            assert (trigger.posture, trigger.threshold) == ("Reactive", 1)
            assert trigger.within.total_seconds() == COOLDOWN_S
            time.sleep(2)  # let the triggers service load the automation

            _emit(api, _findings("follows", 3), follows=True)  # the pipeline's own drift
            _emit(api, _findings("storm", 6))  # a drift storm: six metrics of one batch
            window = time.monotonic()  # the storm's first event occurred before this
            _emit(api, _findings("storm2", 4))  # and the next batch, same window
            assert _wait_for(created, 1, 120) == 1, "the drift storm started no retrain"
            time.sleep(10)  # a second (duplicate) run would exist by now
            assert _runs(created) == 1

            time.sleep(max(0.0, window + COOLDOWN_S + 2 - time.monotonic()))
            _emit(api, _findings("later", 2))  # the window has passed: the next retrain
            assert _wait_for(created, 2, 120) == 2
            time.sleep(5)
            final = _runs(created)
    finally:
        stack_down(root)
    assert final == 2
