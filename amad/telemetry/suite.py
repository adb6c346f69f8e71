"""The Great Expectations suite declared as one table, and the loop that builds it for a contract.

Each row of ``SUITE`` is one check: its name (``meta.check``, what reports file failures under),
the GX expectation class, whether it applies once per batch or once per metric column, its
severity (``"error"``, or the ``ContractConfig`` field that sets it), its message
(``meta.description``) and its arguments. The arguments function returns None where a row does
not apply to a contract (strict or any column order, no entity list, no min or max, no reference
statistics, no label column). ``build_expectations`` walks the table in order; a run of
``"metric"`` rows is expanded column by column, so a column's checks stay together.

Every expectation carries ``meta = {"check": name, "severity": "error" | "warning",
"description": message}`` and GX's own ``severity``: failed errors reject the batch, failed
warnings are recorded. The batch rows read mostly the helper columns of
``amad.telemetry.schema.prepare_frame`` through aggregates, so GX never copies the frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity

from amad.config import ColumnSpec, ContractConfig
from amad.telemetry import schema
from amad.telemetry.gx_metrics import (
    ExpectColumnMeanNumericToBeBetween,
    ExpectColumnStdevNumericToBeBetween,
    ExpectColumnSumNumericToBeBetween,
)
from amad.telemetry.schema import Contract

FLOAT_TYPES = ["float16", "float32", "float64", "Float32", "Float64"]
INT_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64"]
INT_TYPES += ["uint8", "uint16", "uint32"]
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Scope:
    """What a row reads: the contract and batch, and for a ``"metric"`` row its column."""

    contract: Contract
    with_label: bool
    column: ColumnSpec | None = None
    ref: Mapping[str, float] | None = None  # the column's reference statistics, if any

    @property
    def cfg(self) -> ContractConfig:
        return self.contract.cfg

    @property
    def columns(self) -> list[str]:
        """Every column the prepared batch must hold: the contract's and the helper columns."""
        names = self.contract.expected_columns(with_label=self.with_label)
        return names + list(schema.HELPER_COLUMNS)

    @property
    def metric(self) -> ColumnSpec:
        if self.column is None:
            raise TypeError("a batch row of the suite asked for a metric column")
        return self.column

    @property
    def has_reference(self) -> bool:
        """True when drift can be judged: reference statistics with a positive std."""
        return self.ref is not None and float(self.ref.get("std", 0.0)) > 0.0

    @property
    def mean(self) -> float:
        return float(self.ref["mean"]) if self.ref is not None else float("nan")

    @property
    def std(self) -> float:
        return float(self.ref["std"]) if self.ref is not None else float("nan")


Kwargs = dict[str, Any] | None


@dataclass(frozen=True)
class Row:
    """One check of the suite (see the module docstring)."""

    check: str
    expectation: type[Any]
    per: Literal["batch", "metric"]
    severity: str  # "error", "warning", or the ContractConfig field that holds one of them
    message: Callable[[Scope], str]
    kwargs: Callable[[Scope], Kwargs]  # None: the row does not apply to this contract


def _strict(s: Scope) -> bool:
    return s.cfg.column_order == "strict"


def _dtypes(s: Scope) -> list[str]:
    return FLOAT_TYPES + INT_TYPES if s.metric.dtype == "float" else INT_TYPES


E = "error"

# fmt: off
SUITE: tuple[Row, ...] = (
    # -- the table
    Row("column_set", gxe.ExpectTableColumnsToMatchOrderedList, "batch", E,
        lambda s: "exactly the contract's columns, in order",
        lambda s: {"column_list": s.columns} if _strict(s) else None),
    Row("column_set", gxe.ExpectTableColumnsToMatchSet, "batch", E,
        lambda s: "exactly the contract's columns",
        lambda s: None if _strict(s) else {"column_set": s.columns, "exact_match": True}),
    Row("row_count", gxe.ExpectTableRowCountToBeBetween, "batch", E,
        lambda s: "row count within limits",
        lambda s: {"min_value": s.cfg.min_rows, "max_value": s.cfg.max_rows}),
    # -- rows and time, mostly on the helper columns
    Row("timestamp_parseable", gxe.ExpectColumnProportionOfNonNullValuesToBeBetween, "batch", E,
        lambda s: "every timestamp parses as ISO 8601",
        lambda s: {"column": s.contract.timestamp, "min_value": 1.0}),
    Row("entity_present", gxe.ExpectColumnProportionOfNonNullValuesToBeBetween, "batch", E,
        lambda s: "every row names its entity",
        lambda s: {"column": s.contract.entity, "min_value": 1.0}),
    Row("unique_timestamps", gxe.ExpectCompoundColumnsToBeUnique, "batch", E,
        lambda s: "one row per entity and timestamp",
        lambda s: {"column_list": [s.contract.entity, s.contract.timestamp]}),
    Row("timestamps_increasing", gxe.ExpectColumnMinToBeBetween, "batch", E,
        lambda s: "smallest step within an entity (s) is >= 0",
        lambda s: {"column": schema.DT_S, "min_value": 0}),
    Row("max_gap", gxe.ExpectColumnMaxToBeBetween, "batch", E,
        lambda s: f"largest step within an entity (s) is <= {s.cfg.max_gap_s}",
        lambda s: {"column": schema.DT_S, "max_value": s.cfg.max_gap_s}),
    Row("cadence", gxe.ExpectColumnMaxToBeBetween, "batch", E,
        lambda s: f"steps are multiples of {s.cfg.cadence_s} s (largest distance, s)",
        lambda s: {"column": schema.OFF_GRID_S, "max_value": s.cfg.cadence_jitter_s}),
    Row("timezone_consistent", gxe.ExpectColumnUniqueValueCountToBeBetween, "batch", E,
        lambda s: "timestamps all naive (UTC) or all with an offset",
        lambda s: {"column": schema.TZ_AWARE, "max_value": 1}),
    Row("not_already_ingested", ExpectColumnSumNumericToBeBetween, "batch", E,
        lambda s: "rows not after the entity's last accepted timestamp by a cadence step",
        lambda s: {"column": schema.INGESTED, "max_value": 0}),
    Row("finite_values", ExpectColumnSumNumericToBeBetween, "batch", E,
        lambda s: "+/-inf values among the metrics",
        lambda s: {"column": schema.NONFINITE, "max_value": 0}),
    Row("float32_range", ExpectColumnSumNumericToBeBetween, "batch", E,
        lambda s: "finite values beyond the float32 range",
        lambda s: {"column": schema.F32_OVERFLOW, "max_value": 0}),
    Row("known_entity", gxe.ExpectColumnDistinctValuesToBeInSet, "batch", E,
        lambda s: "entity ids from the contract's list",
        lambda s: {"column": s.contract.entity, "value_set": list(s.cfg.entities)}
        if s.cfg.entities else None),
    # -- each metric column
    Row("dtype", gxe.ExpectColumnValuesToBeInTypeList, "metric", E,
        lambda s: f"{s.metric.dtype} values",
        lambda s: {"column": s.metric.name, "type_list": _dtypes(s)}),
    Row("null_tolerance", gxe.ExpectColumnProportionOfNonNullValuesToBeBetween, "metric", E,
        lambda s: f"share of non-null values >= {1 - s.cfg.null_tolerance:g}",
        lambda s: {"column": s.metric.name, "min_value": 1.0 - s.cfg.null_tolerance}),
    Row("flat_column", ExpectColumnStdevNumericToBeBetween, "metric", "flat_severity",
        lambda s: "standard deviation > 0 (not constant)",
        lambda s: {"column": s.metric.name, "min_value": 0.0, "strict_min": True}),
    Row("range", gxe.ExpectColumnMinToBeBetween, "metric", E,
        lambda s: f"smallest value >= {s.metric.min:g}",
        lambda s: {"column": s.metric.name, "min_value": s.metric.min}
        if s.metric.min is not None else None),
    Row("range", gxe.ExpectColumnMaxToBeBetween, "metric", E,
        lambda s: f"largest value <= {s.metric.max:g}",
        lambda s: {"column": s.metric.name, "max_value": s.metric.max}
        if s.metric.max is not None else None),
    Row("drift_mean", ExpectColumnMeanNumericToBeBetween, "metric", "drift_severity",
        lambda s: f"mean within {s.cfg.drift_mean_tolerance:g} reference std of the reference "
                  f"mean {s.mean:.6g}",
        lambda s: {"column": s.metric.name,
                   "min_value": s.mean - s.cfg.drift_mean_tolerance * s.std,
                   "max_value": s.mean + s.cfg.drift_mean_tolerance * s.std}
        if s.has_reference else None),
    Row("drift_std", ExpectColumnStdevNumericToBeBetween, "metric", "drift_severity",
        lambda s: f"std within a factor {s.cfg.drift_std_ratio_tolerance:g} of the reference "
                  f"std {s.std:.6g}",
        lambda s: {"column": s.metric.name,
                   "min_value": s.std / s.cfg.drift_std_ratio_tolerance,
                   "max_value": s.std * s.cfg.drift_std_ratio_tolerance}
        if s.has_reference else None),
    # -- the optional label column
    Row("label_values", gxe.ExpectColumnDistinctValuesToBeInSet, "batch", E,
        lambda s: "labels are 0 or 1",
        lambda s: {"column": s.contract.label, "value_set": [0, 1]}
        if s.with_label and s.contract.label else None),
)
# fmt: on


def expectation(row: Row, scope: Scope) -> Any | None:
    """The GX expectation of ``row`` for ``scope``, tagged with check and severity; None where
    the row does not apply."""
    kwargs = row.kwargs(scope)
    if kwargs is None:
        return None
    severity = row.severity if row.severity in SEVERITIES else getattr(scope.cfg, row.severity)
    gx_severity = FailureSeverity.CRITICAL if severity == "error" else FailureSeverity.WARNING
    meta = {"check": row.check, "severity": severity, "description": row.message(scope)}
    return row.expectation(**kwargs, meta=meta, severity=gx_severity)


def build_expectations(
    contract: Contract,
    *,
    with_label: bool,
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Any]:
    """The suite's expectations for a batch (with or without the optional label column)."""
    batch = [Scope(contract, with_label)]
    metrics = [
        Scope(contract, with_label, spec, (reference or {}).get(spec.name))
        for spec in contract.metrics
    ]
    out: list[Any] = []
    for per, rows in itertools.groupby(SUITE, key=lambda row: row.per):
        block = tuple(rows)
        for scope in batch if per == "batch" else metrics:
            out += [x for row in block if (x := expectation(row, scope)) is not None]
    return out
