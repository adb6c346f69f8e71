"""The verdict on one batch: failed errors and warnings by check, as JSON and Data Docs HTML.

``summarise(name, frame, result)`` turns a Great Expectations suite result (the system of
record, kept on the report) into a ``ValidationReport``. Failures of expectations on a column
that is missing or has the wrong dtype are filed under ``skipped``: the column-set or dtype
error already explains them. This module never imports GX; the Data Docs renderer comes from
``amad.telemetry.expectations`` with the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.files import atomic_write
from amad.telemetry.schema import DT_S


def _message(result: dict[str, Any], meta: dict[str, Any], exception: dict[str, Any]) -> str:
    where = f"{meta['column']}: " if meta.get("column") else ""
    expected = meta.get("description") or meta.get("check")
    if exception.get("raised_exception"):
        return f"{where}could not be evaluated: {exception.get('exception_message')}"
    if "unexpected_count" in result and result.get("element_count") is None:
        return (
            f"{where}unexpected values {result.get('partial_unexpected_list')}; expected {expected}"
        )
    if "unexpected_count" in result:
        sample = result.get("partial_unexpected_list") or []
        return (
            f"{where}{result['unexpected_count']} of {result.get('element_count')} rows break "
            f"'{expected}'" + (f", e.g. {sample[:5]}" if sample else "")
        )
    details = result.get("details", {}).get("mismatched")
    if details:
        return f"columns differ from the contract: {details}"
    return f"{where}expected {expected}; observed {result.get('observed_value')!r}"


def _entry(r: Any) -> dict[str, Any]:
    cfg = r.expectation_config
    meta = dict(cfg.meta or {})
    kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    result = dict(r.result or {})
    exception = dict(r.exception_info or {})
    if "raised_exception" not in exception and exception:  # keyed by metric id when it raised
        first = next(iter(exception.values()))
        exception = {"raised_exception": True, "exception_message": first.get("exception_message")}
    return {
        "check": meta.get("check", cfg.type),
        "severity": meta.get("severity", "error"),
        "column": kwargs.get("column"),
        "expectation": cfg.type,
        "description": meta.get("description"),
        "message": _message(result, {**meta, "column": kwargs.get("column")}, exception),
        "observed": result.get("observed_value"),
        "raised_exception": bool(exception.get("raised_exception")),
    }


@dataclass
class ValidationReport:
    """One batch's verdict: failed errors and warnings, by check, plus the GX result."""

    batch: str
    success: bool
    rows: int
    stage: str = "gx"  # "pre-parse" when the batch never reached the suite
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    gx_result: Any = None
    renderer: Callable[[Any], str] | None = field(default=None, repr=False)

    @property
    def failed_checks(self) -> list[str]:
        return sorted({e["check"] for e in self.errors})

    def summary(self) -> str:
        """One line naming the failed checks (and columns), e.g. ``dtype(m01), range(m02)``."""
        if self.success:
            return f"{self.batch}: accepted ({len(self.warnings)} warnings)"
        parts = [
            f"{e['check']}({e['column']})" if e.get("column") else e["check"] for e in self.errors
        ]
        first = self.errors[0]["message"] if self.errors else ""
        return f"{self.batch}: rejected, failed checks: {', '.join(dict.fromkeys(parts))}; {first}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "success": self.success,
            "stage": self.stage,
            "rows": self.rows,
            "failed_checks": self.failed_checks,
            "summary": self.summary(),
            "errors": self.errors,
            "warnings": self.warnings,
            "skipped": self.skipped,
            "statistics": self.statistics,
        }

    def write(self, directory: str | Path) -> Path:
        """``report.json`` and, when the suite ran, ``gx_result.json`` and ``data_docs.html``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / "report.json", json.dumps(self.to_dict(), indent=2, default=str))
        if self.gx_result is not None:
            _write_text(
                out / "gx_result.json",
                json.dumps(self.gx_result.to_json_dict(), indent=2, default=str),
            )
            if self.renderer is not None:
                _write_text(out / "data_docs.html", self.renderer(self.gx_result))
        return out


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, text)


def _plain_observed(result: Any) -> None:
    """numpy scalars -> Python numbers in observed values (GX's renderer mis-reads numpy 2's repr)."""
    for r in result.results:
        observed = (r.result or {}).get("observed_value")
        if isinstance(observed, np.generic):
            r.result["observed_value"] = observed.item()


def summarise(
    name: str, frame: pd.DataFrame, result: Any, renderer: Callable[[Any], str] | None = None
) -> ValidationReport:
    """A report from a GX suite result; ``renderer`` makes its Data Docs HTML."""
    _plain_observed(result)
    entries = [_entry(r) for r in result.results if not r.success]
    unusable = {e["column"] for e in entries if e["check"] == "dtype" and e["column"]}
    unusable |= set(_missing_columns(result))
    errors, warnings, skipped = [], [], []
    unjudged = _unjudged_checks(frame)
    for e in entries:
        if e["raised_exception"] and e["column"] in unusable:
            skipped.append(e)  # explained by a missing or mistyped column
        elif e["check"] in unjudged:
            skipped.append(e)  # needs two rows: a one-row batch cannot be flat or off-cadence
        elif e["severity"] == "error":
            errors.append(e)
        else:
            warnings.append(e)
    order = {"column_set": 0, "dtype": 1}
    errors.sort(key=lambda e: (order.get(e["check"], 2), e["check"], str(e["column"])))
    stats = dict(result.statistics)
    return ValidationReport(
        batch=name,
        success=not errors,
        rows=len(frame),
        errors=errors,
        warnings=warnings,
        skipped=skipped,
        statistics={k: v for k, v in stats.items() if isinstance(v, int | float)},
        gx_result=result,
        renderer=renderer,
    )


_STEP_CHECKS = frozenset({"cadence", "max_gap", "timestamps_increasing"})  # on the time deltas


def _unjudged_checks(frame: pd.DataFrame) -> frozenset[str]:
    """Checks a batch too short to judge fails vacuously: the flat check on a single row, the
    time-step checks when no entity has two rows (every delta is undefined)."""
    out: set[str] = set()
    if len(frame) < 2:
        out.add("flat_column")
    if DT_S in frame.columns and len(frame) and not frame[DT_S].notna().any():
        out |= _STEP_CHECKS
    return frozenset(out)


def _missing_columns(result: Any) -> list[str]:
    for r in result.results:
        if r.expectation_config.type.startswith("expect_table_columns_to_match"):
            details = (r.result or {}).get("details", {}).get("mismatched") or {}
            return list(details.get("missing", []) if isinstance(details, dict) else [])
    return []
