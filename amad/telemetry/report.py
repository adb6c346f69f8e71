"""The verdict on one batch: failed errors and warnings by check, as JSON and Data Docs HTML.

``summarise(name, frame, result)`` turns a Great Expectations suite result (the system of
record, kept on the report) into a ``ValidationReport``. Failures of expectations on a column
that is missing or has the wrong dtype are filed under ``skipped``: the column-set or dtype
error already explains them. A failed row-wise check (a range, a gap, an inf) also records how
many rows broke it and the first few (entity, timestamp, value), counted on the validated frame,
for the plain-language sentence on its Data Docs page (``amad.telemetry.docs_site``).

``ValidationReport.save(location)`` writes ``report.json``, ``gx_result.json`` and
``data_docs.html`` to a local folder or an ``s3://bucket/prefix`` (``amad.storage.store``);
``read_report(location)`` reads ``report.json`` back from either. This module never imports GX;
the Data Docs page is rendered from GX's result dict by ``amad.telemetry.docs_site``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.files import atomic_write
from amad.storage.store import store_from_uri
from amad.telemetry import docs_site
from amad.telemetry.schema import DT_S, HELPER_PREFIX

REPORT_FILE = "report.json"
_ROW_WISE = ("_min_to_be_between", "_max_to_be_between", "_sum_numeric_to_be_between")
_NULL_SHARE = "expect_column_proportion_of_non_null_values_to_be_between"
_FIRST_ROWS = 3  # offending rows quoted on the Data Docs page


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
        "bounds": {k: kwargs[k] for k in ("min_value", "max_value") if kwargs.get(k) is not None},
        "unexpected_count": result.get("unexpected_count"),
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
    entities: dict[str, int] = field(default_factory=dict)  # rows per entity in the batch
    gx_result: Any = None

    @property
    def failed_checks(self) -> list[str]:
        return sorted({e["check"] for e in self.errors})

    def summary(self) -> str:
        """One line naming the failed checks (and columns), e.g. ``dtype(m01), range(m02)``."""
        if self.success:
            return f"{self.batch}: accepted ({len(self.warnings)} warnings)"
        parts = [  # a helper column (time steps, ingested keys) is internal: the check alone
            f"{e['check']}({e['column']})" if _shown_column(e.get("column")) else e["check"]
            for e in self.errors
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
            "entities": self.entities,
        }

    def gx_dict(self) -> dict[str, Any] | None:
        """GX's result as JSON-ready dicts (None when the suite never ran)."""
        return None if self.gx_result is None else dict(self.gx_result.to_json_dict())

    def files(self, summary: Mapping[str, Any] | None = None) -> dict[str, bytes]:
        """The report's files by name: ``report.json``, ``gx_result.json`` when the suite ran,
        and ``data_docs.html`` (its Data Docs page; ``summary`` from
        ``docs_site.batch_summary`` names its sha256 and outcome and links the site's index)."""
        report, gx = self.to_dict(), self.gx_dict()
        out = {REPORT_FILE: _json_bytes(report)}
        if gx is not None:
            out["gx_result.json"] = _json_bytes(gx)
        nav = None if summary is None else f"../{docs_site.SITE}/{docs_site.INDEX}"
        if summary is None:
            status = "accepted" if self.success else "rejected"
            summary = docs_site.batch_summary(report, gx, sha="", status=status)
        out["data_docs.html"] = docs_site.render_batch_page(
            report, gx, summary, index_href=nav
        ).encode()
        return out

    def save(self, location: str | Path, summary: Mapping[str, Any] | None = None) -> str:
        """Write ``files(summary)`` under ``location`` (a folder or ``s3://bucket/prefix``);
        returns the location."""
        return save_files(self.files(summary), location)

    def write(self, directory: str | Path, summary: Mapping[str, Any] | None = None) -> Path:
        """``files(summary)`` into a local folder (atomic writes); returns the folder."""
        return Path(save_files(self.files(summary), Path(directory)))


def save_files(files: Mapping[str, bytes], location: str | Path) -> str:
    """Write report ``files`` under ``location``: a folder (atomic writes) or an
    ``s3://bucket/prefix`` (one object each); returns the location."""
    text = str(location)
    if not text.startswith("s3://"):
        out = Path(text)
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write(out / name, data)
        return text
    store = store_from_uri(text)
    for name, data in files.items():
        store.put_bytes(name, data)
    return text.rstrip("/")


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, default=str).encode()


def read_report(location: str | Path) -> dict[str, Any]:
    """The ``report.json`` saved under ``location`` (a folder or ``s3://bucket/prefix``)."""
    data, _etag = store_from_uri(location).get_bytes(REPORT_FILE)
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def _plain_observed(result: Any) -> None:
    """numpy scalars -> Python numbers in observed values (JSON and the pages show them plainly)."""
    for r in result.results:
        observed = (r.result or {}).get("observed_value")
        if isinstance(observed, np.generic):
            r.result["observed_value"] = observed.item()


def summarise(
    name: str,
    frame: pd.DataFrame,
    result: Any,
    *,
    keys: tuple[str, str] | None = None,
) -> ValidationReport:
    """A report from a GX suite result; ``keys`` (the timestamp and entity columns) name the
    first offending rows of row-wise checks and count the rows per entity."""
    _plain_observed(result)
    entries = [_with_rows(_entry(r), r, frame, keys) for r in result.results if not r.success]
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
        entities=_entity_rows(frame, keys),
        gx_result=result,
    )


def _with_rows(
    entry: dict[str, Any], r: Any, frame: pd.DataFrame, keys: tuple[str, str] | None
) -> dict[str, Any]:
    """``entry`` plus ``rows_affected`` and ``first_rows`` where the check is row-wise: a value
    outside the expectation's bounds (a min, max or per-row count) or a null."""
    kwargs = r.expectation_config.kwargs
    column, kind = kwargs.get("column"), r.expectation_config.type
    if column not in frame.columns or entry["raised_exception"]:
        return entry
    values = frame[column]
    if kind == _NULL_SHARE:
        bad = values.isna()
    elif kind.endswith(_ROW_WISE) and pd.api.types.is_numeric_dtype(values):
        bad = pd.Series(False, index=frame.index)
        if kwargs.get("min_value") is not None:
            bad |= values < kwargs["min_value"]
        if kwargs.get("max_value") is not None:
            bad |= values > kwargs["max_value"]
    else:
        return entry
    first = frame.loc[bad].head(_FIRST_ROWS)
    rows = [{"value": _plain(row[column]),
             **({"timestamp": str(row[keys[0]]), "entity": str(row[keys[1]])}
                if keys and set(keys) <= set(frame.columns) else {})}
            for _, row in first.iterrows()]  # fmt: skip
    return {**entry, "rows_affected": int(bad.sum()), "first_rows": rows}


def _entity_rows(frame: pd.DataFrame, keys: tuple[str, str] | None) -> dict[str, int]:
    if keys is None or keys[1] not in frame.columns:
        return {}
    counts = frame[keys[1]].astype(str).value_counts(dropna=True)
    return {str(k): int(v) for k, v in sorted(counts.items())}


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numbers as Python numbers (inf and NaN as text), the rest as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value if isinstance(value, int | float | bool) else str(value)


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


def _shown_column(column: Any) -> bool:
    """A column worth naming in a summary line: a contract column, not an internal helper."""
    return bool(column) and not str(column).startswith(HELPER_PREFIX)
