"""The Great Expectations suite built from the telemetry contract; the only module importing GX.

One ephemeral GX context per process (pandas data source, a dataframe asset, a whole-dataframe
batch definition) validates each prepared batch (``amad.telemetry.schema.prepare_frame``) against a suite
built from ``ContractConfig``: column set, dtypes, non-null share, ranges, finite values,
float32 range, unique and increasing timestamps per entity, cadence and gaps, timezone style,
known entities, row count, flat columns, already-ingested rows, and drift of each metric's mean
and standard deviation against the dataset's reference statistics. Every expectation carries
``meta = {"check": name, "severity": "error" | "warning"}`` (and GX's own ``severity``): failed
errors reject the batch, failed warnings are recorded. GX's result object is the system of
record; ``ValidationReport`` summarises it as JSON and renders it as Data Docs HTML with GX's
own page renderer (the ephemeral context has no docs site to build into).

Two custom GX metrics (``amad.column.mean``/``amad.column.stdev``) replace the built-in mean
and standard deviation for numeric columns: GX's versions scan every value in Python for
``Decimal`` objects (about 75 ms per million values), which dominated validation time.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.metrics import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.view import DefaultJinjaPageView

from amad.errors import DataValidationError
from amad.telemetry import schema
from amad.telemetry.report import ValidationReport, summarise
from amad.telemetry.schema import Contract

log = logging.getLogger(__name__)

FLOAT_TYPES = ["float16", "float32", "float64", "Float32", "Float64"]
INT_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64"]
INT_TYPES += ["uint8", "uint16", "uint32"]
RESULT_FORMAT = "BASIC"


# --------------------------------------------------------------------------- fast metrics


def _numeric(column: pd.Series) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column):
        raise TypeError(f"expected a numeric column, got {column.dtype}")
    return column


class ColumnMeanNumeric(ColumnAggregateMetricProvider):
    """Mean of a numeric column (NaN skipped), without GX's per-value Decimal scan."""

    metric_name = "amad.column.mean"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> float:
        return float(_numeric(column).mean())


class ColumnStdevNumeric(ColumnAggregateMetricProvider):
    """Sample standard deviation of a numeric column, without the Decimal scan."""

    metric_name = "amad.column.stdev"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> float:
        return float(_numeric(column).std())


class ColumnSumNumeric(ColumnAggregateMetricProvider):
    """Sum of a numeric column (NaN skipped), without the Decimal scan."""

    metric_name = "amad.column.sum"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> float:
        return float(_numeric(column).sum())


class ExpectColumnSumNumericToBeBetween(gxe.ExpectColumnSumToBeBetween):
    """``expect_column_sum_to_be_between`` on the fast numeric sum."""

    metric_dependencies = ("amad.column.sum",)

    def _validate(
        self, metrics: dict, runtime_configuration: Any = None, execution_engine: Any = None
    ) -> Any:
        return self._validate_metric_value_between(
            metric_name="amad.column.sum",
            metrics=metrics,
            runtime_configuration=runtime_configuration,
            execution_engine=execution_engine,
        )


class ExpectColumnMeanNumericToBeBetween(gxe.ExpectColumnMeanToBeBetween):
    """``expect_column_mean_to_be_between`` on the fast numeric mean."""

    metric_dependencies = ("amad.column.mean",)

    def _validate(
        self, metrics: dict, runtime_configuration: Any = None, execution_engine: Any = None
    ) -> Any:
        return self._validate_metric_value_between(
            metric_name="amad.column.mean",
            metrics=metrics,
            runtime_configuration=runtime_configuration,
            execution_engine=execution_engine,
        )


class ExpectColumnStdevNumericToBeBetween(gxe.ExpectColumnStdevToBeBetween):
    """``expect_column_stdev_to_be_between`` on the fast numeric standard deviation."""

    metric_dependencies = ("amad.column.stdev",)

    def _validate(
        self, metrics: dict, runtime_configuration: Any = None, execution_engine: Any = None
    ) -> Any:
        return self._validate_metric_value_between(
            metric_name="amad.column.stdev",
            metrics=metrics,
            runtime_configuration=runtime_configuration,
            execution_engine=execution_engine,
        )


# --------------------------------------------------------------------------- the suite


def _x(check: str, severity: str, description: str, cls: Any, **kwargs: Any) -> Any:
    """One expectation tagged with its check name and severity (ours and GX's)."""
    gx_severity = FailureSeverity.CRITICAL if severity == "error" else FailureSeverity.WARNING
    meta = {"check": check, "severity": severity, "description": description}
    return cls(**kwargs, meta=meta, severity=gx_severity)


def _table_expectations(contract: Contract, with_label: bool) -> list[Any]:
    cfg = contract.cfg
    cols = contract.expected_columns(with_label=with_label) + list(schema.HELPER_COLUMNS)
    if cfg.column_order == "strict":
        columns = _x(
            "column_set",
            "error",
            "exactly the contract's columns, in order",
            gxe.ExpectTableColumnsToMatchOrderedList,
            column_list=cols,
        )
    else:
        columns = _x(
            "column_set",
            "error",
            "exactly the contract's columns",
            gxe.ExpectTableColumnsToMatchSet,
            column_set=cols,
            exact_match=True,
        )
    rows = _x(
        "row_count",
        "error",
        "row count within limits",
        gxe.ExpectTableRowCountToBeBetween,
        min_value=cfg.min_rows,
        max_value=cfg.max_rows,
    )
    return [columns, rows]


def _time_expectations(contract: Contract) -> list[Any]:
    """Row checks, mostly on the helper columns; aggregates, so GX never copies the frame."""
    cfg, ts, ent, e = contract.cfg, contract.timestamp, contract.entity, "error"
    out = [
        _x(
            "timestamp_parseable",
            e,
            "every timestamp parses as ISO 8601",
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween,
            column=ts,
            min_value=1.0,
        ),
        _x(
            "entity_present",
            e,
            "every row names its entity",
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween,
            column=ent,
            min_value=1.0,
        ),
        _x(
            "unique_timestamps",
            e,
            "one row per entity and timestamp",
            gxe.ExpectCompoundColumnsToBeUnique,
            column_list=[ent, ts],
        ),
        _x(
            "timestamps_increasing",
            e,
            "smallest step within an entity (s) is >= 0",
            gxe.ExpectColumnMinToBeBetween,
            column=schema.DT_S,
            min_value=0,
        ),
        _x(
            "max_gap",
            e,
            f"largest step within an entity (s) is <= {cfg.max_gap_s}",
            gxe.ExpectColumnMaxToBeBetween,
            column=schema.DT_S,
            max_value=cfg.max_gap_s,
        ),
        _x(
            "cadence",
            e,
            f"steps are multiples of {cfg.cadence_s} s (largest distance, s)",
            gxe.ExpectColumnMaxToBeBetween,
            column=schema.OFF_GRID_S,
            max_value=cfg.cadence_jitter_s,
        ),
        _x(
            "timezone_consistent",
            e,
            "timestamps all naive (UTC) or all with an offset",
            gxe.ExpectColumnUniqueValueCountToBeBetween,
            column=schema.TZ_AWARE,
            max_value=1,
        ),
        _x(
            "not_already_ingested",
            e,
            "rows not after the entity's last accepted timestamp by a cadence step",
            ExpectColumnSumNumericToBeBetween,
            column=schema.INGESTED,
            max_value=0,
        ),
        _x(
            "finite_values",
            e,
            "+/-inf values among the metrics",
            ExpectColumnSumNumericToBeBetween,
            column=schema.NONFINITE,
            max_value=0,
        ),
        _x(
            "float32_range",
            e,
            "finite values beyond the float32 range",
            ExpectColumnSumNumericToBeBetween,
            column=schema.F32_OVERFLOW,
            max_value=0,
        ),
    ]
    if cfg.entities:
        out.append(
            _x(
                "known_entity",
                e,
                "entity ids from the contract's list",
                gxe.ExpectColumnDistinctValuesToBeInSet,
                column=ent,
                value_set=list(cfg.entities),
            )
        )
    return out


def _metric_expectations(
    contract: Contract, reference: Mapping[str, Mapping[str, float]] | None
) -> list[Any]:
    cfg, out = contract.cfg, []
    for spec in contract.metrics:
        c = spec.name
        types = FLOAT_TYPES + INT_TYPES if spec.dtype == "float" else INT_TYPES
        out += [
            _x(
                "dtype",
                "error",
                f"{spec.dtype} values",
                gxe.ExpectColumnValuesToBeInTypeList,
                column=c,
                type_list=types,
            ),
            _x(
                "null_tolerance",
                "error",
                f"share of non-null values >= {1 - cfg.null_tolerance:g}",
                gxe.ExpectColumnProportionOfNonNullValuesToBeBetween,
                column=c,
                min_value=1.0 - cfg.null_tolerance,
            ),
            _x(
                "flat_column",
                cfg.flat_severity,
                "standard deviation > 0 (not constant)",
                ExpectColumnStdevNumericToBeBetween,
                column=c,
                min_value=0.0,
                strict_min=True,
            ),
        ]
        if spec.min is not None:
            out.append(
                _x(
                    "range",
                    "error",
                    f"smallest value >= {spec.min:g}",
                    gxe.ExpectColumnMinToBeBetween,
                    column=c,
                    min_value=spec.min,
                )
            )
        if spec.max is not None:
            out.append(
                _x(
                    "range",
                    "error",
                    f"largest value <= {spec.max:g}",
                    gxe.ExpectColumnMaxToBeBetween,
                    column=c,
                    max_value=spec.max,
                )
            )
        ref = (reference or {}).get(c)
        if ref is not None and float(ref.get("std", 0.0)) > 0.0:
            mean, std = float(ref["mean"]), float(ref["std"])
            tol, ratio = cfg.drift_mean_tolerance, cfg.drift_std_ratio_tolerance
            out += [
                _x(
                    "drift_mean",
                    cfg.drift_severity,
                    f"mean within {tol:g} reference std of the reference mean {mean:.6g}",
                    ExpectColumnMeanNumericToBeBetween,
                    column=c,
                    min_value=mean - tol * std,
                    max_value=mean + tol * std,
                ),
                _x(
                    "drift_std",
                    cfg.drift_severity,
                    f"std within a factor {ratio:g} of the reference std {std:.6g}",
                    ExpectColumnStdevNumericToBeBetween,
                    column=c,
                    min_value=std / ratio,
                    max_value=std * ratio,
                ),
            ]
    return out


def build_expectations(
    contract: Contract,
    *,
    with_label: bool,
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Any]:
    """The suite's expectations for a batch (with or without the optional label column)."""
    out = _table_expectations(contract, with_label) + _time_expectations(contract)
    out += _metric_expectations(contract, reference)
    if with_label and contract.label:
        out.append(
            _x(
                "label_values",
                "error",
                "labels are 0 or 1",
                gxe.ExpectColumnDistinctValuesToBeInSet,
                column=contract.label,
                value_set=[0, 1],
            )
        )
    return out


# --------------------------------------------------------------------------- GX runtime


@lru_cache(maxsize=1)
def _gx_runtime() -> tuple[Any, Any]:
    """The process's ephemeral context and its whole-dataframe batch definition."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name="telemetry").add_dataframe_asset(name="batch")
    return context, asset.add_batch_definition_whole_dataframe("whole_batch")


_DEFINITIONS: dict[str, Any] = {}


def suite_definition(
    contract: Contract,
    *,
    with_label: bool,
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> Any:
    """The GX validation definition of this contract's suite, built once per distinct input."""
    key = json.dumps([contract.cfg.model_dump(mode="json"), with_label, reference], sort_keys=True)
    if key not in _DEFINITIONS:
        context, batch_definition = _gx_runtime()
        name = f"contract-{len(_DEFINITIONS)}"
        expectations = build_expectations(contract, with_label=with_label, reference=reference)
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        _DEFINITIONS[key] = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
    return _DEFINITIONS[key]


def render_data_docs(result: Any) -> str:
    """GX Data Docs HTML for one validation result (GX's page renderer and Jinja view).

    Rendering works on a copy in which distinct-value results show their unexpected values
    as the observed value: GX's renderer expects row percentages they do not carry.
    """
    shown = copy.deepcopy(result)
    for r in shown.results:
        res = r.result or {}
        if "unexpected_count" in res and "element_count" not in res:
            res["observed_value"] = res.pop("partial_unexpected_list", None)
            res.pop("unexpected_count")
    document = ValidationResultsPageRenderer().render(shown)
    return str(DefaultJinjaPageView().render(document))


def validate_frame(
    prepared: pd.DataFrame,
    contract: Contract,
    *,
    name: str = "batch",
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> ValidationReport:
    """Run the contract's suite on a frame from ``schema.prepare_frame``."""
    with_label = contract.label is not None and contract.label in prepared.columns
    definition = suite_definition(contract, with_label=with_label, reference=reference)
    result = definition.run(batch_parameters={"dataframe": prepared}, result_format=RESULT_FORMAT)
    report = summarise(name, prepared, result, render_data_docs)
    log.info("%s", report.summary())
    return report


def validate_bytes(
    data: bytes,
    contract: Contract,
    *,
    name: str = "batch",
    reference: Mapping[str, Mapping[str, float]] | None = None,
    known_keys: pd.MultiIndex | None = None,
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Pre-parse, prepare and validate one raw batch; the prepared frame when it parsed."""
    try:
        raw = schema.read_batch(data, name, contract)
    except DataValidationError as exc:
        report = ValidationReport(
            batch=name, success=False, rows=0, stage="pre-parse", errors=exc.report["errors"]
        )
        log.info("%s", report.summary())
        return report, None
    prepared = schema.prepare_frame(raw, contract, known_keys=known_keys)
    return validate_frame(prepared, contract, name=name, reference=reference), prepared
