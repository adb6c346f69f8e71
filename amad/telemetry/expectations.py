"""Validation with Great Expectations: one ephemeral context per process runs the contract's suite.

One ephemeral GX context per process (pandas data source, a dataframe asset, a whole-dataframe
batch definition) validates each prepared batch (``amad.telemetry.schema.prepare_frame``) against
the suite that ``amad.telemetry.suite`` builds from ``ContractConfig`` (declared there as one
table): column set, dtypes, non-null share, ranges, finite values, float32 range, unique and
increasing timestamps per entity, cadence and gaps, timezone style, known entities, row count,
flat columns, already-ingested rows, and drift of each metric's mean and standard deviation
against the dataset's reference statistics. GX's result object is the system of record;
``ValidationReport`` summarises it as JSON, and ``amad.telemetry.docs_site`` renders it as the
Data Docs site (GX's own site templates load their assets from public CDNs; see there). GX is imported only here, in
``amad.telemetry.suite`` and in ``amad.telemetry.gx_metrics`` (its fast numeric metrics).
``validate_bytes`` is the one pre-parse, prepare and validate sequence (``amad validate`` and
ingest both call it); it releases the raw frame once prepared, and after each run the batch GX's
engine caches is dropped, so no validated frame outlives its caller's reference.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

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


def _release_batch() -> None:
    """Drop the batch GX's execution engine keeps after a run: it would hold the validated
    frame until the next run replaced it (so two batches at once, then)."""
    _, batch_definition = _gx_runtime()
    manager = batch_definition.data_asset.datasource.get_execution_engine().batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


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
    try:
        result = definition.run(
            batch_parameters={"dataframe": prepared}, result_format=RESULT_FORMAT
        )
    finally:
        _release_batch()
    keys = (contract.timestamp, contract.entity)
    report = summarise(name, prepared, result, keys=keys)
    log.debug("%s", report.summary())  # the caller (ingest, the CLI, a flow) reports the outcome
    return report


def validate_bytes(
    data: bytes,
    contract: Contract,
    *,
    name: str = "batch",
    reference: Mapping[str, Mapping[str, float]] | None = None,
    known_keys: pd.MultiIndex | None = None,
    ingested: Callable[[pd.DataFrame], np.ndarray | None] | None = None,
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Pre-parse, prepare and validate one raw batch; the prepared frame when it parsed.

    ``ingested(prepared)``, when given, returns the ``schema.INGESTED`` flags of the rows
    already in a dataset (None: leave them as ``known_keys`` set them). The raw frame is
    released as soon as the prepared one exists: only one copy of the batch is ever validated.
    """
    try:
        raw = schema.read_batch(data, name, contract)
    except DataValidationError as exc:
        report = ValidationReport(
            batch=name, success=False, rows=0, stage="pre-parse", errors=exc.report["errors"]
        )
        log.debug("%s", report.summary())
        return report, None
    prepared = schema.prepare_frame(raw, contract, known_keys=known_keys)
    del raw  # its replaced timestamp column must not outlive the preparation
    flags = None if ingested is None else ingested(prepared)
    if flags is not None:
        prepared[schema.INGESTED] = flags
    return validate_frame(prepared, contract, name=name, reference=reference), prepared
