"""The Great Expectations suite built from the contract, on good and broken in-memory frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig
from amad.telemetry.expectations import validate_bytes, validate_frame
from amad.telemetry.schema import Contract, prepare_frame
from amad.telemetry.suite import build_expectations

COLUMNS = [ColumnSpec(name="a", min=-100.0, max=100.0), ColumnSpec(name="b")]
REFERENCE = {"a": {"mean": 0.0, "std": 1.0}, "b": {"mean": 0.0, "std": 1.0}}


def contract(**kw: object) -> Contract:
    return Contract(ContractConfig(columns=COLUMNS, entities=["e1", "e2"], **kw))  # type: ignore[arg-type]


def good(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ts = pd.date_range("2024-01-01", periods=n, freq="60s", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "entity": "e1",
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "label": np.zeros(n, dtype=np.int64),
        }
    )


def run(f: pd.DataFrame, c: Contract | None = None, reference: dict | None = REFERENCE):  # type: ignore[type-arg]
    c = c or contract()
    return validate_frame(prepare_frame(f, c), c, name="t", reference=reference)


def test_good_frame_passes_every_check() -> None:
    report = run(good())
    assert report.success, report.summary()
    assert not report.errors and not report.warnings and not report.skipped
    assert report.statistics["evaluated_expectations"] >= 15


def test_every_expectation_carries_a_check_name_and_severity() -> None:
    exps = build_expectations(contract(), with_label=True, reference=REFERENCE)
    assert all(e.meta["check"] and e.meta["severity"] in ("error", "warning") for e in exps)
    checks = {e.meta["check"] for e in exps}
    assert {"column_set", "dtype", "null_tolerance", "range", "flat_column", "drift_mean",
            "drift_std", "unique_timestamps", "cadence", "max_gap", "known_entity"} <= checks  # fmt: skip
    drift = [e for e in exps if e.meta["check"] == "drift_mean"]
    assert {e.severity.value for e in drift} == {"warning"}


def test_no_reference_means_no_drift_checks() -> None:
    exps = build_expectations(contract(), with_label=False, reference=None)
    assert not {e.meta["check"] for e in exps} & {"drift_mean", "drift_std"}


def test_drift_is_a_warning_or_an_error_as_configured() -> None:
    shifted = good().assign(a=lambda f: f["a"] + 50.0)
    warned = run(shifted)
    assert warned.success and "drift_mean" in {w["check"] for w in warned.warnings}
    rejected = run(shifted, contract(drift_severity="error"))
    assert not rejected.success and "drift_mean" in rejected.failed_checks


def test_flat_column_severity_follows_the_config() -> None:
    flat = good().assign(b=3.0)
    assert "flat_column" in run(flat, reference=None).failed_checks
    report = run(flat, contract(flat_severity="warning"), reference=None)
    assert report.success and report.warnings[0]["check"] == "flat_column"


def test_strict_column_order() -> None:
    reordered = good()[["entity", "timestamp", "b", "a", "label"]]
    assert run(reordered).success
    assert run(reordered, contract(column_order="strict")).failed_checks == ["column_set"]


def test_missing_column_failures_are_explained_not_repeated() -> None:
    report = run(good().drop(columns=["b"]))
    assert report.failed_checks == ["column_set"]
    assert {s["column"] for s in report.skipped} == {"b"}
    assert "missing" in report.errors[0]["message"]


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda f: f.assign(a=f["a"].where(f.index != 3, 500.0)), "range"),
        (lambda f: f.assign(entity="e9"), "known_entity"),
        (lambda f: f.assign(label=f["label"].where(f.index != 2, 7)), "label_values"),
        (lambda f: f.iloc[:5], "row_count"),
        (lambda f: f.assign(b=f["b"].where(f.index % 3 != 0)), "null_tolerance"),
    ],
)
def test_broken_frames_fail_the_named_check(edit: object, check: str) -> None:
    report = run(edit(good()))  # type: ignore[operator]
    assert check in report.failed_checks, report.summary()
    assert check in report.summary()


def test_report_files_hold_json_and_data_docs(tmp_path: Path) -> None:
    f = good()
    f.loc[4, "a"] = 1000.0
    report = run(f)
    out = report.write(tmp_path / "r")
    saved = json.loads((out / "report.json").read_text())
    assert saved["success"] is False and saved["failed_checks"] == ["range"]
    assert json.loads((out / "gx_result.json").read_text())["success"] is False
    html = (out / "data_docs.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html
    assert "Validation" in html and "1 row has a above the contract&#x27;s max 100" in html


def test_validate_bytes_reports_pre_parse_failures() -> None:
    report, frame = validate_bytes(b"", contract(), name="empty.csv")
    assert frame is None and report.stage == "pre-parse"
    assert report.failed_checks == ["empty_file"]


def test_the_summary_line_never_names_an_internal_helper_column() -> None:
    from amad.telemetry.report import ValidationReport

    errors = [
        {"check": "max_gap", "column": "__amad_dt_s", "message": "a gap of 600 s"},
        {"check": "range", "column": "m01", "message": "above the max"},
    ]
    line = ValidationReport(batch="b.csv", success=False, rows=3, errors=errors).summary()
    assert "failed checks: max_gap, range(m01);" in line and "__amad" not in line
