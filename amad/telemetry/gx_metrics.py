"""Fast GX metrics and the expectations on them: numeric mean, standard deviation and sum.

Three custom GX metrics (``amad.column.mean``/``amad.column.stdev``/``amad.column.sum``) and the
expectations that read them replace GX's built-in column mean, standard deviation and sum for
numeric columns: GX's versions scan every value in Python for ``Decimal`` objects, which
dominated validation time (see benchmarks/TUNING.md). Importing this module registers them.
"""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.metrics import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)


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
