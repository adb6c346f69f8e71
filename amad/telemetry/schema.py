"""The telemetry contract, and the cheap checks that run on a raw batch before Great Expectations.

A batch is one CSV (UTF-8, comma-delimited, one header line) or Parquet file holding rows of
``timestamp, entity, <metric columns...>[, label]`` as ``ContractConfig`` describes them.
``read_batch`` sniffs the bytes first and refuses, with a ``DataValidationError`` whose report
names the failed check, what no table validator can judge: an empty file, a file that is neither
CSV nor Parquet, non-UTF-8 bytes, a wrong delimiter, a header without rows, a truncated file
(those byte-level checks live in ``amad.telemetry.preparse``); the entity column stays in Arrow,
never Python strings.
``prepare_frame`` then normalises timestamps to UTC and adds the ``__amad_*`` helper columns
(per-entity time deltas, distance from the cadence grid, timezone style, non-finite counts,
already-ingested rows) that the Great Expectations suite (``amad.telemetry.suite``) checks; the
suite, not this module, decides whether a batch is accepted.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from amad.config import ColumnSpec, ContractConfig
from amad.telemetry.preparse import check_csv_layout, failure, sniff_format

log = logging.getLogger(__name__)

HELPER_PREFIX = "__amad_"
DT_S = f"{HELPER_PREFIX}dt_s"  # seconds since the entity's previous row, in file order
OFF_GRID_S = f"{HELPER_PREFIX}off_grid_s"  # distance of a positive delta from the cadence grid
TZ_AWARE = f"{HELPER_PREFIX}tz_aware"  # 1 when the raw timestamp carried an offset
NONFINITE = f"{HELPER_PREFIX}nonfinite"  # count of +/-inf among the row's numeric metrics
F32_OVERFLOW = f"{HELPER_PREFIX}f32_overflow"  # count of finite values beyond float32's range
INGESTED = f"{HELPER_PREFIX}ingested"  # 1 when (entity, timestamp) is already in the dataset
HELPER_COLUMNS = (DT_S, OFF_GRID_S, TZ_AWARE, NONFINITE, F32_OVERFLOW, INGESTED)

FLOAT32_MAX = float(np.finfo(np.float32).max)
# An entity id names a folder (``entity=<percent-encoded id>``), whose name must stay under the
# usual 255-byte file-name limit: the encoded id may be at most this long.
MAX_ENTITY_ID_ENCODED = 200
_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class Contract:
    """The contract as the validator needs it: column names, dtypes and ranges, in order."""

    cfg: ContractConfig

    @property
    def timestamp(self) -> str:
        return self.cfg.timestamp_column

    @property
    def entity(self) -> str:
        return self.cfg.entity_column

    @property
    def label(self) -> str | None:
        return self.cfg.label_column

    @property
    def metrics(self) -> list[ColumnSpec]:
        return list(self.cfg.columns)

    @property
    def metric_names(self) -> list[str]:
        return [c.name for c in self.cfg.columns]

    def expected_columns(self, *, with_label: bool) -> list[str]:
        """Raw batch columns in contract order; the label only when the batch has one."""
        cols = [self.timestamp, self.entity, *self.metric_names]
        if with_label and self.label:
            cols.append(self.label)
        return cols


# --------------------------------------------------------------------------- pre-parse


def _csv_text_column(data: bytes, column: str, n_rows: int, name: str) -> pd.Series:
    """``column`` of a CSV exactly as written (``007`` stays ``007``); empty fields are null."""
    options = pacsv.ConvertOptions(
        include_columns=[column], column_types={column: pa.string()}, strings_can_be_null=False
    )
    try:
        values = pacsv.read_csv(pa.BufferReader(data), convert_options=options).column(0)
    except pa.ArrowException as exc:
        raise failure("malformed_csv", f"{name}: {exc}") from exc
    if len(values) != n_rows:
        raise failure("malformed_csv", f"{name}: column {column!r} has {len(values)} rows")
    nulls = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    return pd.Series(pd.array(nulls, dtype="str"))  # in Arrow throughout: no Python strings


def _read_csv(data: bytes, name: str, text_columns: Iterable[str]) -> pd.DataFrame:
    check_csv_layout(data, name)
    try:
        frame = pd.read_csv(io.BytesIO(data), engine="pyarrow")
    except (ValueError, pa.ArrowException) as exc:  # ParserError is a ValueError
        raise failure("malformed_csv", f"{name}: {exc}") from exc
    for column in text_columns:  # never type-inferred: 007, true, 2024-01-01 are ids
        if column in frame.columns:
            text = _csv_text_column(data, column, len(frame), name)
            frame[column] = text.set_axis(frame.index)
    return frame


def _text_table(table: pa.Table, columns: Iterable[str], name: str) -> pa.Table:
    """Text columns as strings: string or integer Parquet columns; anything else is refused."""
    for column in columns:
        if column not in table.column_names:
            continue
        values = table.column(column)
        kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_integer(kind)):  # fmt: skip
            raise failure("text_column_type", f"{name}: column {column!r} is {values.type}, "
                          "not text", column=column)  # fmt: skip
        index = table.column_names.index(column)
        table = table.set_column(index, column, pc.cast(values, pa.string()))
    return table


def _read_parquet(data: bytes, name: str, text_columns: Iterable[str]) -> pd.DataFrame:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as exc:
        raise failure("unreadable_parquet", f"{name}: {exc}") from exc
    if table.num_rows == 0:
        raise failure("header_only", f"{name}: a schema and no rows")
    table = _text_table(table, text_columns, name)
    # no consolidation copy of the columns, and each Arrow column freed once converted
    return table.to_pandas(split_blocks=True, self_destruct=True)


def check_entity_ids(frame: pd.DataFrame, entity: str, name: str) -> None:
    """Refuse an entity id that cannot name a dataset folder (too long once encoded)."""
    if entity not in frame.columns:
        return
    ids = pd.unique(frame[entity].dropna())
    too_long = [str(e) for e in ids if len(quote(str(e), safe="")) > MAX_ENTITY_ID_ENCODED]
    if too_long:
        raise failure(
            "entity_id_length",
            f"{name}: {len(too_long)} entity id(s) longer than {MAX_ENTITY_ID_ENCODED} "
            f"characters once encoded, e.g. {too_long[0][:40]!r}...",
            column=entity,
        )


def read_batch(data: bytes, name: str = "batch", contract: Contract | None = None) -> pd.DataFrame:
    """Parse a raw CSV or Parquet batch after the cheap pre-parse checks.

    With ``contract`` its entity column is read as text (never type-inferred) and its ids are
    checked by ``check_entity_ids``.
    """
    kind = sniff_format(data, name)
    text = [] if contract is None else [contract.entity]
    read = _read_parquet if kind == "parquet" else _read_csv
    frame = read(data, name, text)
    frame.columns = [str(c) for c in frame.columns]
    if contract is not None:
        check_entity_ids(frame, contract.entity, name)
    return frame


# --------------------------------------------------------------------------- helpers


def _parse_timestamps(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps (NaT where unparseable) and a per-row 'had an offset' flag."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        ts = raw.dt.tz_convert("UTC")
        return ts.dt.as_unit("ns"), np.ones(len(raw), dtype=np.int8)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.dt.tz_localize("UTC").dt.as_unit("ns"), np.zeros(len(raw), dtype=np.int8)
    text = raw.astype("string")
    aware = text.str.strip().str.contains(_TZ_SUFFIX, regex=True).fillna(False)
    naive = pd.to_datetime(text.where(~aware), errors="coerce", format="ISO8601")
    if isinstance(naive.dtype, pd.DatetimeTZDtype):  # nothing naive survived the mask
        naive = naive.dt.tz_convert(None)
    parsed = pd.to_datetime(text.where(aware), errors="coerce", utc=True, format="ISO8601")
    ts = parsed.where(aware.to_numpy(), naive.dt.tz_localize("UTC"))
    return ts.dt.as_unit("ns"), aware.to_numpy(dtype=np.int8)


def _deltas(ts: pd.Series, entity: pd.Series) -> np.ndarray:
    """Seconds since the same entity's previous row, in file order (NaN for the first)."""
    ns = ts.to_numpy(dtype="datetime64[ns]").view(np.int64).astype(np.float64)
    ns[ts.isna().to_numpy()] = np.nan
    codes, _ = pd.factorize(entity, use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    sorted_ns, sorted_codes = ns[order], codes[order]
    diff = np.empty_like(sorted_ns)
    diff[0] = np.nan
    diff[1:] = np.diff(sorted_ns)
    diff[1:][sorted_codes[1:] != sorted_codes[:-1]] = np.nan
    out = np.empty_like(diff)
    out[order] = diff / 1e9
    return out


def _off_grid(dt_s: np.ndarray, cadence_s: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        rem = np.mod(dt_s, cadence_s)
        off = np.minimum(rem, cadence_s - rem)
    off[~(dt_s > 0)] = np.nan  # out-of-order and duplicate rows are judged by other checks
    return off


def _nonfinite(frame: pd.DataFrame, names: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many float metrics are +/-inf, and how many are finite but beyond float32.

    Column by column, so no (rows, metrics) copy is ever made.
    """
    inf = np.zeros(len(frame), dtype=np.int64)
    big = np.zeros(len(frame), dtype=np.int64)
    for name in names:
        if name not in frame or not pd.api.types.is_float_dtype(frame[name].dtype):
            continue
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        is_inf = np.isinf(values)
        with np.errstate(invalid="ignore"):
            beyond = np.abs(values) > FLOAT32_MAX
        inf += is_inf
        big += beyond & ~is_inf
    return inf, big


def ingested_flags(ts: pd.Series, entity: pd.Series, known: pd.MultiIndex | None) -> np.ndarray:
    """1 where ``(entity, timestamp)`` is among ``known`` (rows already in the dataset)."""
    if known is None or len(known) == 0:
        return np.zeros(len(ts), dtype=np.int8)
    keys = pd.MultiIndex.from_arrays([entity.astype("string"), ts])
    return keys.isin(known).astype(np.int8)


def covered_flags(
    ts: pd.Series, entity: pd.Series, last: Mapping[str, pd.Timestamp], cadence_s: float,
    jitter_s: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """1 where a row is not after its entity's last accepted timestamp by a cadence step.

    Overlap is judged against what was accepted, not by exact equality: yesterday's batch
    shifted by +30 s or +1 ms is covered; the next batch (``last + cadence``) is not.
    """
    if not last:
        return np.zeros(len(ts), dtype=np.int8)
    floor = {e: t + pd.Timedelta(seconds=cadence_s - jitter_s) for e, t in last.items()}
    bound = entity.astype("string").map(floor)
    stamps = pd.to_datetime(bound, utc=True).dt.as_unit("ns")
    covered = (ts < stamps).fillna(False)  # NaT bound: a new entity; NaT ts: judged elsewhere
    return covered.to_numpy(dtype=np.int8)


def prepare_frame(
    raw: pd.DataFrame, contract: Contract, *, known_keys: pd.MultiIndex | None = None
) -> pd.DataFrame:
    """The frame the suite validates: timestamps in UTC plus the ``__amad_*`` helper columns.

    ``known_keys`` holds ``(entity, timestamp)`` pairs already in the dataset. Columns the
    contract does not know are kept (the suite rejects them); missing ones stay missing.
    """
    frame = raw.copy(deep=False)
    n = len(frame)
    nan = np.full(n, np.nan)
    if contract.timestamp in frame.columns:
        ts, aware = _parse_timestamps(frame[contract.timestamp])
        frame[contract.timestamp] = ts
        entity = (
            frame[contract.entity]
            if contract.entity in frame.columns
            else pd.Series([""] * n, index=frame.index)
        )
        dt_s = _deltas(ts, entity)
        frame[DT_S] = dt_s
        frame[OFF_GRID_S] = _off_grid(dt_s, float(contract.cfg.cadence_s))
        frame[TZ_AWARE] = aware
        frame[INGESTED] = ingested_flags(ts, entity, known_keys)
    else:
        frame[DT_S], frame[OFF_GRID_S] = nan, nan
        frame[TZ_AWARE] = np.zeros(n, dtype=np.int8)
        frame[INGESTED] = np.zeros(n, dtype=np.int8)
    frame[NONFINITE], frame[F32_OVERFLOW] = _nonfinite(frame, contract.metric_names)
    return frame


def storage_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """An accepted, prepared frame as stored: contract columns only, floats as float32."""
    has_label = contract.label is not None and contract.label in frame.columns
    entity = frame[contract.entity]
    columns: dict[str, Any] = {
        contract.timestamp: frame[contract.timestamp],
        contract.entity: entity
        if pd.api.types.is_string_dtype(entity.dtype)
        else entity.astype(str),
    }
    for spec in contract.metrics:
        kind = np.float32 if spec.dtype == "float" else np.int64
        columns[spec.name] = frame[spec.name].to_numpy(dtype=kind)
    if has_label and contract.label:
        columns[contract.label] = frame[contract.label].to_numpy(dtype=np.int8)
    return pd.DataFrame(columns, index=frame.index, copy=False)  # one block per column: no
    # consolidation copy of the metrics
