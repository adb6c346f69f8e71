"""Drift findings from a validation report and from a score PSI; the drift log opens each once."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.config import ContractConfig
from amad.evaluation.drift import DriftFinding, metric_drift, score_drift
from amad.evaluation.records import Evaluation
from amad.storage.drift_log import open_drift
from amad.storage.store import LocalStore

REF = {"m00": {"mean": 10.0, "std": 2.0}, "m01": {"mean": 0.0, "std": 1.0},
       "m02": {"mean": 5.0, "std": 1.0}}  # fmt: skip


def _entry(check: str, column: str, observed: float | None) -> dict[str, object]:
    return {"check": check, "column": column, "observed": observed, "severity": "warning"}


def test_one_finding_per_drifted_metric_with_its_size() -> None:
    report = {
        "errors": [],
        "warnings": [
            _entry("drift_std", "m01", 9.0),
            _entry("drift_mean", "m00", 30.0),
            _entry("drift_std", "m00", 10.0),
            _entry("flat_column", "m02", 0.0),  # not drift
            _entry("drift_mean", "m02", None),  # not evaluated
        ],
    }
    found = metric_drift(report, REF, ContractConfig(), batch="abc", data_version="v1",
                         entities=["e2", "e1"])  # fmt: skip
    assert [f.subject for f in found] == ["m00", "m01"]  # contract column order, m00 once
    m00, m01 = found
    assert (m00.statistic, m00.size, m00.threshold) == ("mean", 10.0, 4.0)  # z = (30-10)/2
    assert m00.checks == {"drift_mean": {"size": 10.0, "threshold": 4.0},
                          "drift_std": {"size": 5.0, "threshold": 4.0}}  # fmt: skip
    assert (m01.statistic, m01.size) == ("std", 9.0)
    assert m00.entities == ("e1", "e2") and m00.data_version == "v1" and m00.key == "abc/m00"
    assert DriftFinding.from_dict(m00.to_dict()) == m00
    assert metric_drift(report, None, ContractConfig(), batch="abc") == []


def test_score_drift_above_the_psi_limit_only() -> None:
    ev = Evaluation(eval_id="e1:fp", score_psi=0.4, model_version="v-7")
    found = score_drift(ev, 0.25, entity="e1", data_version="d1")
    assert found is not None and (found.subject, found.size, found.threshold) == (
        "score",
        0.4,
        0.25,
    )
    assert found.key == "e1_fp@v-7/score" and found.entities == ("e1",)
    assert score_drift(Evaluation(eval_id="x", score_psi=0.1), 0.25) is None
    assert score_drift(Evaluation(eval_id="x", score_psi=float("nan")), 0.25) is None


def test_drift_log_opens_each_finding_once(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    findings = [f.to_dict() for f in metric_drift(
        {"warnings": [_entry("drift_mean", "m00", 30.0), _entry("drift_mean", "m01", 9.0)]},
        REF, ContractConfig(), batch="abc",
    )]  # fmt: skip
    first = open_drift(store, "amad", findings)
    assert [f["subject"] for f in first] == ["m00", "m01"]
    assert first[0]["log_key"] == "drift/amad/abc/m00.json"
    assert open_drift(store, "amad", findings) == []  # the same batch again: nothing new


@pytest.mark.parametrize("severity", ["warning", "error"])
def test_errors_count_as_drift_too(severity: str) -> None:
    entry = {**_entry("drift_mean", "m00", 2.0), "severity": severity}
    report = {
        "errors": [entry] if severity == "error" else [],
        "warnings": [entry] if severity == "warning" else [],
    }
    assert [f.size for f in metric_drift(report, REF, ContractConfig(), batch="b")] == [-4.0]
