"""The pre-parse checks and helper columns in amad.telemetry.schema (no Great Expectations here)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig
from amad.errors import DataValidationError
from amad.telemetry.schema import (
    DT_S,
    F32_OVERFLOW,
    INGESTED,
    NONFINITE,
    OFF_GRID_S,
    TZ_AWARE,
    Contract,
    prepare_frame,
    read_batch,
    sniff_format,
    storage_frame,
)

CONTRACT = Contract(ContractConfig(columns=[ColumnSpec(name="a"), ColumnSpec(name="b")]))


def frame(n: int = 12) -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=n, freq="60s", tz="UTC")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"timestamp": ts, "entity": "e1", "a": rng.normal(size=n), "b": rng.normal(size=n)}
    )


def csv_bytes(f: pd.DataFrame) -> bytes:
    return f.to_csv(index=False, lineterminator="\n").encode()


def check_of(exc: pytest.ExceptionInfo[DataValidationError]) -> str:
    return str(exc.value.report["errors"][0]["check"])


@pytest.mark.parametrize(
    ("data", "check"),
    [
        (b"", "empty_file"),
        (b"  \n", "empty_file"),
        (b"\xef\xbb\xbf", "empty_file"),  # a byte-order mark and nothing else
        (b"\xef\xbb\xbf \r\n", "empty_file"),
        (b"\x1f\x8b\x08\x00rest", "not_csv_or_parquet"),
        (b"PK\x03\x04zip", "not_csv_or_parquet"),
        (b'{"a": 1}\n', "not_csv_or_parquet"),
        (b"timestamp;entity;a\n1;2;3\n", "delimiter"),
        (b"timestamp\tentity\ta\n1\t2\t3\n", "delimiter"),
        (b"just one column\n1\n", "not_csv_or_parquet"),
        (b"timestamp,entity,a\n", "header_only"),
        (b"timestamp,entity,a\n2024-01-01,e1,1.0\n2024-01-01", "truncated_file"),
        (b"timestamp,entity,a\n2024-01-01,e\xe9,1.0\n", "encoding"),
        (b"PAR1 not really parquet", "truncated_file"),
        (b"a\x00b,c\n", "not_csv_or_parquet"),
    ],
)
def test_pre_parse_rejects_with_the_check_named(data: bytes, check: str) -> None:
    with pytest.raises(DataValidationError) as exc:
        read_batch(data, "x.csv")
    assert check_of(exc) == check
    assert check in str(exc.value)


def test_ragged_rows_are_malformed_csv() -> None:
    with pytest.raises(DataValidationError) as exc:
        read_batch(b"timestamp,entity,a\n2024-01-01,e1,1.0\n2024-01-01,e1\n2024-01-01,e1,2\n")
    assert check_of(exc) == "malformed_csv"


def test_csv_and_parquet_read_to_the_same_frame() -> None:
    f = frame()
    buf = io.BytesIO()
    f.to_parquet(buf, index=False)
    assert sniff_format(buf.getvalue()) == "parquet"
    from_parquet = read_batch(buf.getvalue())
    from_csv = read_batch(csv_bytes(f))
    assert list(from_csv.columns) == list(from_parquet.columns) == list(f.columns)
    np.testing.assert_allclose(from_csv["a"], from_parquet["a"])


def test_header_only_parquet_is_rejected() -> None:
    buf = io.BytesIO()
    frame().iloc[:0].to_parquet(buf, index=False)
    with pytest.raises(DataValidationError) as exc:
        read_batch(buf.getvalue())
    assert check_of(exc) == "header_only"


def test_helper_columns_measure_time_steps_per_entity() -> None:
    a, b = frame(5), frame(5).assign(entity="e2")
    f = pd.concat([a, b], ignore_index=True)
    f.loc[7, "timestamp"] = f.loc[7, "timestamp"] + pd.Timedelta(seconds=30)  # e2 off grid
    out = prepare_frame(read_batch(csv_bytes(f)), CONTRACT)
    dt = out[DT_S].to_numpy()
    assert np.isnan(dt[0]) and np.isnan(dt[5])  # first row of each entity
    assert dt[1] == 60.0 and dt[7] == 90.0 and dt[8] == 30.0
    assert np.nanmax(out[OFF_GRID_S]) == 30.0
    assert set(out[TZ_AWARE]) == {1}
    assert out[INGESTED].sum() == 0


def test_mixed_naive_and_aware_timestamps_are_flagged() -> None:
    text = b"timestamp,entity,a,b\n2024-01-01T00:00:00Z,e1,1,2\n2024-01-01T00:01:00,e1,1,3\n"
    out = prepare_frame(read_batch(text), CONTRACT)
    assert sorted(out[TZ_AWARE]) == [0, 1]
    assert out["timestamp"].notna().all()  # naive read as UTC
    assert out[DT_S].iloc[1] == 60.0


def test_nonfinite_and_float32_overflow_are_counted_per_row() -> None:
    f = frame(4)
    f.loc[1, "a"] = np.inf
    f.loc[2, "b"] = 1e39
    out = prepare_frame(f, CONTRACT)
    assert out[NONFINITE].tolist() == [0, 1, 0, 0]
    assert out[F32_OVERFLOW].tolist() == [0, 0, 1, 0]


def test_storage_frame_keeps_contract_columns_as_float32() -> None:
    out = storage_frame(prepare_frame(frame(), CONTRACT), CONTRACT)
    assert list(out.columns) == ["timestamp", "entity", "a", "b"]
    assert out["a"].dtype == np.float32


def test_contract_config_rejects_clashing_names() -> None:
    with pytest.raises(ValueError, match="reuse"):
        ContractConfig(columns=[ColumnSpec(name="timestamp")])
    with pytest.raises(ValueError, match="unique"):
        ContractConfig(columns=[ColumnSpec(name="a"), ColumnSpec(name="a")])
