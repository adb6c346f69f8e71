"""Validation with Great Expectations: one ephemeral context per process runs the contract's suite.

One ephemeral GX context per process (pandas data source, a dataframe asset, a whole-dataframe
batch definition) validates each prepared batch (``amad.telemetry.schema.prepare_frame``) against
the suite that ``amad.telemetry.suite`` builds from ``ContractConfig`` (declared there as one
table): column set, dtypes, non-null share, ranges, finite values, float32 range, unique and
increasing timestamps per entity, cadence and gaps, timezone style, known entities, row count,
flat columns, already-ingested rows, and drift of each metric's mean and standard deviation
against the dataset's reference statistics. GX's result object is the system of record;
``ValidationReport`` summarises it as JSON and renders it as Data Docs HTML with GX's own page
renderer (the ephemeral context has no docs site to build into). GX is imported only here, in
``amad.telemetry.suite`` and in ``amad.telemetry.gx_metrics`` (its fast numeric metrics).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.view import DefaultJinjaPageView

from amad.errors import DataValidationError
from amad.telemetry import schema
from amad.telemetry.report import ValidationReport, summarise
from amad.telemetry.schema import Contract
from amad.telemetry.suite import build_expectations

log = logging.getLogger(__name__)

RESULT_FORMAT = "BASIC"


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
    log.debug("%s", report.summary())  # the caller (ingest, the CLI, a flow) reports the outcome
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
        log.debug("%s", report.summary())
        return report, None
    prepared = schema.prepare_frame(raw, contract, known_keys=known_keys)
    return validate_frame(prepared, contract, name=name, reference=reference), prepared
