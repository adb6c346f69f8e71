"""Malformed telemetry batches, one named kind each, for ``amad synth --bad`` and the tests.

Each kind turns a good contract-shaped frame (``amad.series.synthetic.to_frame``) into the bytes of a
batch file that breaks exactly one part of the contract, and names the check that must reject
it (``BAD_KINDS[kind].check``). ``repeated_rows`` also needs the previous batch's frame.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd

from amad.errors import ConfigError
from amad.telemetry.schema import Contract

Frame: TypeAlias = pd.DataFrame


def to_csv_bytes(frame: Frame, **kwargs: object) -> bytes:
    """A frame as contract CSV: UTF-8, ',' delimited, ISO 8601 timestamps, '\\n' line ends."""
    return frame.to_csv(index=False, lineterminator="\n", **kwargs).encode("utf-8")


def to_parquet_bytes(frame: Frame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@dataclass(frozen=True)
class BadKind:
    """How to break a batch, and the check that must catch it."""

    check: str
    make: Callable[[Frame, Contract, Frame | None], bytes]
    suffix: str = ".csv"


def _metric(c: Contract, i: int = 0) -> str:
    return c.metric_names[i % len(c.metric_names)]


def _csv(
    edit: Callable[[Frame, Contract], Frame],
) -> Callable[[Frame, Contract, Frame | None], bytes]:
    return lambda f, c, _prev: to_csv_bytes(edit(f.copy(), c))


def _set(f: Frame, rows: slice | list[int], col: str, value: object) -> Frame:
    f[col] = f[col].astype(object)
    f.loc[f.index[rows], col] = value
    return f


def _ranged(c: Contract) -> tuple[str, float]:
    for spec in c.metrics:
        if spec.max is not None:
            return spec.name, spec.max + 10 * (abs(spec.max) + 1)
        if spec.min is not None:
            return spec.name, spec.min - 10 * (abs(spec.min) + 1)
    raise ConfigError("--bad out_of_range needs a contract column with a min or max")


def _out_of_range(f: Frame, c: Contract) -> Frame:
    col, value = _ranged(c)
    f.loc[f.index[5], col] = value
    return f


def _duplicate(f: Frame, c: Contract) -> Frame:
    return pd.concat([f.iloc[:20], f.iloc[10:12], f.iloc[20:]], ignore_index=True)


def _out_of_order(f: Frame, c: Contract) -> Frame:
    ts = f[c.timestamp].copy()
    ts.iloc[[5, 6]] = ts.iloc[[6, 5]].to_numpy()
    f[c.timestamp] = ts
    return f


def _gap(f: Frame, c: Contract) -> Frame:
    skip = c.cfg.max_gap_s // c.cfg.cadence_s + 2
    first = f[c.entity].iloc[0]
    mask = (f[c.entity] == first).to_numpy()
    drop = np.flatnonzero(mask)[10 : 10 + skip]
    return f.drop(index=f.index[drop]).reset_index(drop=True)


def _cadence(f: Frame, c: Contract) -> Frame:
    half = pd.Timedelta(seconds=c.cfg.cadence_s / 2)
    start = f.groupby(c.entity)[c.timestamp].transform("min")
    step = f.groupby(c.entity).cumcount()
    f[c.timestamp] = start + step * half
    return f


def _tz_mix(f: Frame, c: Contract) -> Frame:
    text = f[c.timestamp].dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype(object)
    naive = f[c.timestamp].dt.strftime("%Y-%m-%dT%H:%M:%S")
    text.iloc[::2] = naive.iloc[::2]
    f[c.timestamp] = text
    return f


def _truncated(f: Frame, c: Contract, _prev: Frame | None) -> bytes:
    data = to_csv_bytes(f)
    last = data.rstrip(b"\n").rfind(b"\n")
    return data[: last + 1 + data[last + 1 :].index(b",") + 3]


def _non_utf8(f: Frame, c: Contract, _prev: Frame | None) -> bytes:
    data = to_csv_bytes(f)
    cut = data.index(b"\n", len(data) // 2)
    return data[:cut] + "é".encode("latin-1") + data[cut:]


def _parquet_schema(f: Frame, c: Contract, _prev: Frame | None) -> bytes:
    other = f.drop(columns=c.metric_names[:2]).rename(columns={_metric(c, 2): "cpu_pct"})
    other[c.timestamp] = other[c.timestamp].astype("int64") // 10**9
    return to_parquet_bytes(other)


def _truncated_parquet(f: Frame, c: Contract, _prev: Frame | None) -> bytes:
    data = to_parquet_bytes(f)
    return data[: len(data) * 2 // 3]


def _constant(f: Frame, c: Contract) -> Frame:
    for name in c.metric_names:
        f[name] = 1.0
    return f


def _drift(f: Frame, c: Contract) -> Frame:
    for name in c.metric_names[:2]:
        f[name] = f[name] + 50 * (f[name].std() + 1.0)
    return f


def _repeated(f: Frame, c: Contract, prev: Frame | None) -> bytes:
    if prev is None:
        raise ConfigError("--bad repeated_rows needs the previous batch (use --batches 2 or more)")
    return to_csv_bytes(pd.concat([prev.iloc[-30:], f], ignore_index=True))


BAD_KINDS: dict[str, BadKind] = {
    "missing_column": BadKind("column_set", _csv(lambda f, c: f.drop(columns=[_metric(c, 2)]))),
    "extra_column": BadKind("column_set", _csv(lambda f, c: f.assign(extra_metric=1.0))),
    "renamed_column": BadKind(
        "column_set", _csv(lambda f, c: f.rename(columns={_metric(c, 3): "renamed"}))
    ),
    "wrong_dtype": BadKind("dtype", _csv(lambda f, c: f.assign(**{_metric(c, 1): True}))),
    "strings_in_numeric": BadKind(
        "dtype", _csv(lambda f, c: _set(f, [3, 4], _metric(c, 2), "abc"))
    ),
    "nan_above_tolerance": BadKind(
        "null_tolerance", _csv(lambda f, c: _set(f, slice(0, None, 5), _metric(c, 4), np.nan))
    ),
    "inf_values": BadKind(
        "finite_values",
        _csv(lambda f, c: _set(_set(f, [2], _metric(c, 5), np.inf), [7], _metric(c, 5), -np.inf)),
    ),
    "out_of_range": BadKind("range", _csv(_out_of_range)),
    "float32_overflow": BadKind(
        "float32_range", _csv(lambda f, c: _set(f, [4], _metric(c, 6), 1e39))
    ),
    "duplicate_timestamps": BadKind("unique_timestamps", _csv(_duplicate)),
    "out_of_order": BadKind("timestamps_increasing", _csv(_out_of_order)),
    "gap": BadKind("max_gap", _csv(_gap)),
    "wrong_cadence": BadKind("cadence", _csv(_cadence)),
    "tz_mix": BadKind("timezone_consistent", _csv(_tz_mix)),
    "unparseable_timestamp": BadKind(
        "timestamp_parseable", _csv(lambda f, c: _set(f, [3], c.timestamp, "not-a-time"))
    ),
    "unknown_entity": BadKind(
        "known_entity", _csv(lambda f, c: _set(f, slice(0, 20), c.entity, "zz-unknown"))
    ),
    "missing_entity": BadKind("entity_present", _csv(lambda f, c: _set(f, [3], c.entity, None))),
    "bad_label": BadKind("label_values", _csv(lambda f, c: _set(f, [3], c.label or "label", 2))),
    "too_few_rows": BadKind("row_count", _csv(lambda f, c: f.iloc[:3])),
    "constant_columns": BadKind("flat_column", _csv(_constant)),
    "drift": BadKind("drift_mean", _csv(_drift)),
    "empty_file": BadKind("empty_file", lambda f, c, p: b""),
    "header_only": BadKind("header_only", lambda f, c, p: to_csv_bytes(f.iloc[:0])),
    "truncated_file": BadKind("truncated_file", _truncated),
    "truncated_parquet": BadKind("truncated_file", _truncated_parquet, ".parquet"),
    "non_utf8": BadKind("encoding", _non_utf8),
    "wrong_delimiter": BadKind("delimiter", lambda f, c, p: to_csv_bytes(f, sep=";")),
    "parquet_schema": BadKind("column_set", _parquet_schema, ".parquet"),
    "gzip_file": BadKind(
        "not_csv_or_parquet", lambda f, c, p: gzip.compress(to_csv_bytes(f), mtime=0), ".csv.gz"
    ),
    "json_file": BadKind(
        "not_csv_or_parquet",
        lambda f, c, p: json.dumps(f.head(3).to_dict(orient="records"), default=str).encode(),
        ".json",
    ),
    "repeated_rows": BadKind("not_already_ingested", _repeated),
}


def make_bad(
    kind: str, frame: Frame, contract: Contract, previous: Frame | None = None
) -> tuple[bytes, str]:
    """The bytes and file suffix of a ``kind`` batch made from a good ``frame``."""
    if kind not in BAD_KINDS:
        raise ConfigError(f"unknown bad-batch kind {kind!r}; known: {', '.join(BAD_KINDS)}")
    spec = BAD_KINDS[kind]
    return spec.make(frame, contract, previous), spec.suffix
