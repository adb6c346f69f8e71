"""Validating a batch holds it once (issue 10, item 5): same verdicts and rows, fewer copies.

The CSV layout checks now read the head and tail of the bytes instead of the whole decoded text;
``whole_text_check`` below is the straightforward version they replaced, and both must agree on
every input (including windows so small that every growth path runs). The entity column of a CSV
is kept in Arrow instead of as Python strings. The raw frame is released once the prepared one
exists, and the prepared frame once the stored one does. ``GOLDEN`` holds the report.json and
stored-row digests of a fixed sequence of batches as the code before this change wrote them;
regenerate (only for an intended change of a report or of what is stored) with
``.venv/bin/python tests/unit/telemetry/test_validate_memory.py``. ``digests`` runs the
batches under the same warning filter in pytest and as a script: pytest makes every warning an
error, and numpy's "invalid value" warning (the std of a column holding inf, in the last batch)
would then turn two of that batch's checks into "could not be evaluated", unlike in production.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from amad.config import ColumnSpec, ContractConfig
from amad.errors import DataValidationError
from amad.telemetry import dataset, expectations, ingest, preparse, schema
from amad.telemetry.corruptions import BAD_KINDS, make_bad, to_csv_bytes, to_parquet_bytes
from amad.telemetry.schema import Contract

COLUMNS = [ColumnSpec(name="m00", min=-5.0, max=5.0)] + [
    ColumnSpec(name=f"m{i:02d}") for i in range(1, 8)
]
CONTRACT = Contract(ContractConfig(columns=COLUMNS))
START = pd.Timestamp("2024-01-01T22:00:00Z")  # each batch crosses midnight: two days per entity


# --------------------------------------------------------------------------- the CSV layout


def whole_text_check(data: bytes, name: str) -> None:
    """The CSV layout checks as they were: on the whole decoded text (the reference)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        near = data[exc.start : exc.start + 4]
        raise schema.failure("encoding", f"{name}: not valid UTF-8 at byte {exc.start} "
                             f"({near!r})", byte_offset=exc.start) from exc  # fmt: skip
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if not data[bom:].strip():  # blank, or only a byte-order mark (was a bare IndexError)
        raise schema.failure("empty_file", f"{name} is empty ({len(data)} bytes, blank or only "
                             "a BOM)")  # fmt: skip
    if text.lstrip()[:1] in ("{", "[", "<"):
        raise schema.failure(
            "not_csv_or_parquet", f"{name} looks like JSON/XML, not CSV or Parquet"
        )
    lines = text.splitlines()
    header = lines[0]
    if "," not in header:
        found = [d for d in (";", "\t", "|") if d in header]
        if found:
            raise schema.failure("delimiter", f"{name}: header is delimited by {found[0]!r}; "
                                 "the contract uses ','")  # fmt: skip
        raise schema.failure(
            "not_csv_or_parquet", f"{name}: first line has no ',' delimited header"
        )
    rows = [ln for ln in lines[1:] if ln.strip()]
    if not rows:
        raise schema.failure("header_only", f"{name}: a header line and no data rows")
    n_header = len(next(csv.reader([header])))
    last = next(csv.reader([rows[-1]]))
    if not text.endswith(("\n", "\r")) and len(last) != n_header:
        raise schema.failure("truncated_file", f"{name}: last line has {len(last)} of {n_header} "
                             "fields and no line end (cut short)")  # fmt: skip


def verdict(check: Any, data: bytes) -> Any:
    try:
        check(data, "b.csv")
    except DataValidationError as exc:
        return str(exc), exc.report
    return "ok"


PIECES = ["a", ",", "1", " ", "\n", "\r", "\r\n", "\t", ";", "|", "{", "<", '"', "é", "€", "😀",
          "\x85", "\u2028", "\x0b", "\x0c", "\x1c", "\ufeff", "\xa0"]  # fmt: skip


def fuzz_inputs(n: int, seed: int = 0) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        data = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 24))).encode()
        if rnd.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
        if data and rnd.random() < 0.05:
            i = rnd.randrange(len(data))
            data = data[:i] + b"\xff" + data[i:]
        if data and rnd.random() < 0.05:
            data = data[:-1]  # maybe inside a character
        out.append(data)
    return out


def frame(b: int, *, entities: tuple[str, ...] = ("e1", "e2", "e3"), n: int = 90) -> pd.DataFrame:
    """Batch ``b``: ``n`` rows per entity at 60 s from ``START + b * n`` minutes, 8 metrics."""
    rng = np.random.default_rng(b)
    ts = pd.date_range(START + pd.Timedelta(minutes=b * n), periods=n, freq="60s")
    parts = []
    for e in entities:
        f = pd.DataFrame(rng.normal(size=(n, 8)).round(6), columns=[c.name for c in COLUMNS])
        f.insert(0, "entity", e)
        f.insert(0, "timestamp", ts)
        f["label"] = (rng.random(n) < 0.05).astype(np.int64)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def test_csv_layout_agrees_with_the_whole_text_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    made = [make_bad(kind, frame(1), CONTRACT, frame(0))[0] for kind in BAD_KINDS]
    tricky = [b"", b"\xef\xbb\xbf", b"a,b\r\n1,2\r\n\r\n  \r\n", b"a,b\n1,2", b"a,b\n1", b"a,b\n\n",
              b" \n{x}", "a,b\n1,é\u20282,3".encode(), b"a;b\n1;2\n", b"a\tb\n", b"a,b\r1,2\r",
              to_csv_bytes(frame(0)), b"\xef\xbb\xbfa,b\n1,2\n", b"a,b\n1,\xe2\x82"]  # fmt: skip
    cases = [d for d in made + tricky if not d.startswith(b"PAR1")] + fuzz_inputs(800)
    disagree = []
    for window, chunk in [(1, 1), (3, 7), (64, 1 << 20)]:
        monkeypatch.setattr(preparse, "_WINDOW", window)
        monkeypatch.setattr(preparse, "_UTF8_CHUNK", chunk)
        disagree += [(window, d) for d in cases
                     if verdict(whole_text_check, d) != verdict(preparse.check_csv_layout, d)]  # fmt: skip
    assert disagree == []
    verdicts = [verdict(whole_text_check, d) for d in cases]
    failed = {v[1]["errors"][0]["check"] for v in verdicts if isinstance(v, tuple)}
    assert {"encoding", "delimiter", "header_only", "truncated_file", "empty_file"} <= failed
    assert "ok" in verdicts  # all exercised


def test_entity_column_of_a_csv_is_the_text_as_written() -> None:
    data = 'timestamp,entity,x\n1,007,1\n2,,2\n3, x ,3\n4,"",4\n5,é😀,5\n6,true,6\n'.encode()
    options = pacsv.ConvertOptions(include_columns=["entity"], column_types={"entity": pa.string()},
                                   strings_can_be_null=False)  # fmt: skip
    values = pacsv.read_csv(pa.BufferReader(data), convert_options=options).column(0)
    expected = pd.Series([v or None for v in values.to_pylist()], dtype="str")  # as it was
    got = schema._csv_text_column(data, "entity", 6, "b.csv")
    pd.testing.assert_series_equal(got, expected)
    assert got.iloc[0] == "007" and pd.isna(got.iloc[1]) and got.iloc[2] == " x "
    assert got.iloc[3] is not None and pd.isna(got.iloc[3]) and got.iloc[5] == "true"


# --------------------------------------------------------------------------- copies released


def test_raw_frame_is_released_before_the_suite_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    raws: list[weakref.ref[pd.DataFrame]] = []
    alive: list[bool] = []
    read, validate = schema.read_batch, expectations.validate_frame

    def reading(*args: Any, **kwargs: Any) -> pd.DataFrame:
        out = read(*args, **kwargs)
        raws.append(weakref.ref(out))
        return out

    def validating(*args: Any, **kwargs: Any) -> Any:
        alive.append(raws[-1]() is not None)  # no gc.collect(): freed by reference counting
        return validate(*args, **kwargs)

    monkeypatch.setattr(schema, "read_batch", reading)
    monkeypatch.setattr(expectations, "validate_frame", validating)
    report, prepared = expectations.validate_bytes(to_csv_bytes(frame(0)), CONTRACT)
    assert report.success and prepared is not None and alive == [False]


def test_prepared_frame_is_released_before_the_batch_is_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[weakref.ref[pd.DataFrame]] = []
    alive: list[bool] = []
    validate, stage = ingest.validate_batch, dataset.stage_batch

    def validating(*args: Any, **kwargs: Any) -> Any:
        report, frame_ = validate(*args, **kwargs)
        prepared.append(weakref.ref(frame_))
        return report, frame_

    def staging(*args: Any, **kwargs: Any) -> Any:
        alive.append(prepared[-1]() is not None)  # GX's result and the report keep no frame
        return stage(*args, **kwargs)

    monkeypatch.setattr(ingest, "validate_batch", validating)
    monkeypatch.setattr(dataset, "stage_batch", staging)
    out = ingest.ingest_bytes(to_parquet_bytes(frame(0)), "b0.parquet", CONTRACT, **dirs(tmp_path))
    assert out.status == "accepted" and alive == [False]


# --------------------------------------------------------------------------- same verdicts, same rows


def dirs(root: Path) -> dict[str, Path]:
    return {"data_dir": root / "data", "quarantine_dir": root / "q", "reports_dir": root / "r"}


def batches() -> list[tuple[str, bytes]]:
    """A clean CSV (sets the reference), a drifted Parquet (warning), a BOM + CRLF CSV with a
    few nulls, numeric-looking entity ids, and a broken CSV (range, inf, duplicate, overlap)."""
    drift = frame(1)
    drift["m01"] += 10.0
    nulls = frame(2)
    nulls.loc[[3, 100], "m02"] = np.nan
    ids = frame(3, entities=("007", "1e3"))
    broken = frame(4)
    broken.loc[5, "m00"], broken.loc[7, "m03"] = 9.5, np.inf
    broken = pd.concat([broken, broken.iloc[[10]], frame(0).iloc[:5]], ignore_index=True)
    crlf = b"\xef\xbb\xbf" + to_csv_bytes(nulls).replace(b"\n", b"\r\n")
    return [("b0.csv", to_csv_bytes(frame(0))), ("b1.parquet", to_parquet_bytes(drift)),
            ("b2.csv", crlf), ("b3.csv", to_csv_bytes(ids)), ("b4.csv", to_csv_bytes(broken))]  # fmt: skip


def digests(root: Path) -> dict[str, Any]:
    """report.json per batch, rows and Parquet bytes per stored part, the manifests."""
    out: dict[str, Any] = {"pyarrow": pa.__version__, "reports": {}, "rows": {}, "parquet": {}}
    for name, data in batches():
        with warnings.catch_warnings():  # as in production: a warning, not an error (see above)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            outcome = ingest.ingest_bytes(data, name, CONTRACT, **dirs(root))
        report = Path(outcome.report_dir or "") / "report.json"
        out["reports"][f"{name} {outcome.status}"] = hashlib.sha256(report.read_bytes()).hexdigest()
    data_dir = root / "data"
    for rel in dataset.committed_parts(data_dir):
        table = pq.read_table(data_dir / rel)
        rows = table.to_pandas().to_csv(index=False).encode() + str(table.schema).encode()
        out["rows"][rel] = hashlib.sha256(rows).hexdigest()[:16]
        out["parquet"][rel] = hashlib.sha256((data_dir / rel).read_bytes()).hexdigest()[:16]
    manifests = json.dumps(dataset.manifests(data_dir), sort_keys=True).encode()
    out["manifests"] = hashlib.sha256(manifests).hexdigest()
    return out


# written by the code before this change (8b9c2d5; amad/telemetry as at a9b6d0a), run as a script
GOLDEN: dict[str, Any] = {
    "pyarrow": "26.0.1",
    "reports": {
        "b0.csv accepted": "e34ca7c301dce66987ea84b23ab4483930802817aa85f1d28f78c6b92018eb36",
        "b1.parquet accepted": "fab890ed54f457eac46d660420555f628eba587749f08a0df27c0ce3087ccaa1",
        "b2.csv accepted": "1e470a514f1e50852926c789b1e126797938df9819b24bd02f6739331876a3a4",
        "b3.csv accepted": "c439579f0c49437ac5a2d255e30719b6dfa7bc77baf96b51091dbcd9f3003a1b",
        "b4.csv quarantined": "c887eaa88ca69183291831d34c5a8b50bbd5a645d727bc500196150c18b23369",
    },
    "rows": {
        "telemetry/entity=007/date=2024-01-02/part-58f8fd2dac8a8bfa.parquet": "9a74c28f1f0980a6",
        "telemetry/entity=1e3/date=2024-01-02/part-58f8fd2dac8a8bfa.parquet": "19f19e2cb0b33ed9",
        "telemetry/entity=e1/date=2024-01-01/part-5038873c78b40ad5.parquet": "50d794a1a457b417",
        "telemetry/entity=e1/date=2024-01-01/part-9dec853bc9799006.parquet": "82bfcdc32f7f3082",
        "telemetry/entity=e1/date=2024-01-02/part-5038873c78b40ad5.parquet": "a522b97eeb5e3909",
        "telemetry/entity=e1/date=2024-01-02/part-6d082f059b81241f.parquet": "c033543322a8bb21",
        "telemetry/entity=e2/date=2024-01-01/part-5038873c78b40ad5.parquet": "960b77e0cb161929",
        "telemetry/entity=e2/date=2024-01-01/part-9dec853bc9799006.parquet": "1588148c9c681553",
        "telemetry/entity=e2/date=2024-01-02/part-5038873c78b40ad5.parquet": "f5d95515e64b6c8f",
        "telemetry/entity=e2/date=2024-01-02/part-6d082f059b81241f.parquet": "e57e1a3ab71a0a0c",
        "telemetry/entity=e3/date=2024-01-01/part-5038873c78b40ad5.parquet": "357a20d1bf07a443",
        "telemetry/entity=e3/date=2024-01-01/part-9dec853bc9799006.parquet": "4d2444cd82105e78",
        "telemetry/entity=e3/date=2024-01-02/part-5038873c78b40ad5.parquet": "28234451ce4cc9da",
        "telemetry/entity=e3/date=2024-01-02/part-6d082f059b81241f.parquet": "634be970fd386081",
    },
    "parquet": {
        "telemetry/entity=007/date=2024-01-02/part-58f8fd2dac8a8bfa.parquet": "3643f4db636af507",
        "telemetry/entity=1e3/date=2024-01-02/part-58f8fd2dac8a8bfa.parquet": "4903cc12f88f0181",
        "telemetry/entity=e1/date=2024-01-01/part-5038873c78b40ad5.parquet": "073c52eb7741d504",
        "telemetry/entity=e1/date=2024-01-01/part-9dec853bc9799006.parquet": "e52a691dcf622cc5",
        "telemetry/entity=e1/date=2024-01-02/part-5038873c78b40ad5.parquet": "1705606882f8c4da",
        "telemetry/entity=e1/date=2024-01-02/part-6d082f059b81241f.parquet": "8349c65e40367269",
        "telemetry/entity=e2/date=2024-01-01/part-5038873c78b40ad5.parquet": "50eccb2edd770808",
        "telemetry/entity=e2/date=2024-01-01/part-9dec853bc9799006.parquet": "9a0d01432d7d4ddd",
        "telemetry/entity=e2/date=2024-01-02/part-5038873c78b40ad5.parquet": "9c2d302aa0d4e911",
        "telemetry/entity=e2/date=2024-01-02/part-6d082f059b81241f.parquet": "402d83c6ec689e00",
        "telemetry/entity=e3/date=2024-01-01/part-5038873c78b40ad5.parquet": "a28cf5cf2f1961b9",
        "telemetry/entity=e3/date=2024-01-01/part-9dec853bc9799006.parquet": "3692c939facb2f80",
        "telemetry/entity=e3/date=2024-01-02/part-5038873c78b40ad5.parquet": "d500a7fdcf1d89dd",
        "telemetry/entity=e3/date=2024-01-02/part-6d082f059b81241f.parquet": "d3d31295676b8c7e",
    },
    "manifests": "7227af7f4a23715365b948104ccaaa459f23dd973943896d314ef731107e8674",
}


def test_reports_and_stored_rows_match_the_code_before(tmp_path: Path) -> None:
    got = digests(tmp_path)
    assert got["reports"] == GOLDEN["reports"]
    assert got["rows"] == GOLDEN["rows"]
    if got["pyarrow"] == GOLDEN["pyarrow"]:  # Parquet bytes name the writer's version
        assert got["parquet"] == GOLDEN["parquet"] and got["manifests"] == GOLDEN["manifests"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(digests(Path(tmp)), indent=4))
