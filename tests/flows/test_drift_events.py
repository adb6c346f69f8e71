"""Drift acts, in the flow: a drifted batch -> one ``amad.drift.detected`` event per drifted
metric, never twice for the same batch (validated again, or quarantined again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import flows.drift
from flows.validate_telemetry import validate_telemetry
from tests.flows.helpers import PARAMS, make_workspace

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _drifted(good: Path, out: Path) -> Path:
    """``good`` with m00's mean moved by 50 std and m01's spread multiplied by 20."""
    frame = pd.read_csv(good)
    frame["m00"] = frame["m00"] + 50 * frame["m00"].std()
    frame["m01"] = frame["m01"].mean() + 20 * (frame["m01"] - frame["m01"].mean())
    frame.to_csv(out, index=False)
    return out


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    monkeypatch.setattr(flows.drift, "emit_event", lambda **kw: got.append(kw))
    return got


def test_drifted_batch_emits_one_event_per_metric_once(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    overrides, batches = make_workspace(tmp_path / "ws")
    assert validate_telemetry([str(batches[0])], PARAMS, overrides)["drift"] == 0  # the reference
    bad = _drifted(batches[1], tmp_path / "ws" / "in" / "drifted.csv")

    result = validate_telemetry([str(bad)], PARAMS, overrides)
    assert result["accepted"] == 1 and result["drift"] == 2
    by_subject = {e["payload"]["subject"]: e for e in events}
    assert sorted(by_subject) == ["m00", "m01"]
    m00, m01 = by_subject["m00"], by_subject["m01"]
    assert m00["event"] == "amad.drift.detected"
    assert m00["resource"]["prefect.resource.id"] == "amad.model.amad"
    assert m00["resource"]["amad.retrain-follows"] == "false"
    assert m00["payload"]["statistic"] == "mean" and m00["payload"]["size"] > 40
    assert (
        m00["payload"]["threshold"] == 4.0
        and m00["payload"]["data_version"] == result["data_version"]
    )
    assert m01["payload"]["checks"]["drift_std"]["size"] > 10
    assert m00["payload"]["batch"] == result["batches"][0]["sha256"]
    assert m00["related"] == [
        {"prefect.resource.id": "amad.entity.unit-1", "prefect.resource.role": "entity"}
    ]

    again = validate_telemetry([str(bad)], PARAMS, overrides)  # the same bytes: duplicate
    assert again["drift"] == 0 and len(events) == 2


def test_quarantined_twice_announces_once(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    overrides, batches = make_workspace(tmp_path / "ws")
    overrides = {**overrides, "contract.drift_severity": "error"}
    validate_telemetry([str(batches[0])], PARAMS, overrides)
    bad = _drifted(batches[1], tmp_path / "ws" / "in" / "drifted.csv")
    first = validate_telemetry([str(bad)], PARAMS, overrides, retrain_follows=True)
    assert first["quarantined"] == 1 and first["drift"] == 2
    assert {e["resource"]["amad.retrain-follows"] for e in events} == {"true"}
    second = validate_telemetry([str(bad)], PARAMS, overrides)
    assert second["quarantined"] == 1 and second["drift"] == 0 and len(events) == 2
