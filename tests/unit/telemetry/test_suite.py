"""The suite table: every row becomes an expectation, and nothing else does."""

from __future__ import annotations

from typing import Any

import pytest

from amad.config import ColumnSpec, ContractConfig
from amad.telemetry.schema import Contract
from amad.telemetry.suite import SUITE, build_expectations

BOUNDED = [ColumnSpec(name="a", min=-1.0, max=1.0), ColumnSpec(name="b", dtype="int", min=0.0, max=9.0)]  # fmt: skip
REFERENCE = {"a": {"mean": 0.0, "std": 1.0}, "b": {"mean": 4.0, "std": 2.0}}
BATCH_ROWS = [r for r in SUITE if r.per == "batch"]
METRIC_ROWS = [r for r in SUITE if r.per == "metric"]


def full(order: str) -> list[Any]:
    """Every optional row applies: entities, min and max, reference statistics, a label."""
    cfg = ContractConfig(columns=BOUNDED, entities=["e1"], column_order=order)  # type: ignore[arg-type]
    return build_expectations(Contract(cfg), with_label=True, reference=REFERENCE)


def bare() -> list[Any]:
    """No optional row applies."""
    cfg = ContractConfig(columns=[ColumnSpec(name="a")], entities=None, label_column=None)
    return build_expectations(Contract(cfg), with_label=False, reference=None)


@pytest.mark.parametrize("order", ["strict", "any"])
def test_suite_size_is_the_table_size_when_every_row_applies(order: str) -> None:
    exps = full(order)
    # the two column_set rows exclude each other (strict or any order): one of them applies
    assert len(exps) == len(BATCH_ROWS) - 1 + len(BOUNDED) * len(METRIC_ROWS)


def test_every_row_of_the_table_becomes_an_expectation() -> None:
    made = {(type(e), e.meta["check"]) for e in full("strict") + full("any") + bare()}
    assert made == {(r.expectation, r.check) for r in SUITE}


def test_rows_that_do_not_apply_are_left_out() -> None:
    checks = [e.meta["check"] for e in bare()]
    assert not {"known_entity", "range", "drift_mean", "drift_std", "label_values"} & set(checks)
    # batch rows less the other column_set, known_entity and label_values; dtype, null_tolerance
    # and flat_column of the one metric
    assert len(checks) == len(BATCH_ROWS) - 3 + 3
