"""Ingest throughput: validate and ingest 1,000,000 rows x 38 metrics, and where the time goes.

    .venv/bin/python benchmarks/ingest_throughput.py [--rows 1000000] [--metrics 38]
        [--entities 20] [--format parquet|csv] [--out bench-out/ingest.json]

A small warm-up batch is ingested first (it builds the GX context and sets the reference
statistics, so the measured batch runs the full suite including drift and already-ingested
checks). Then the same measured batch is timed phase by phase (parse, helper columns, the GX
suite, storage partitions + commit, JSON report + Data Docs) and end to end through
``amad.telemetry.ingest.ingest`` into a fresh copy of the warmed-up dataset. Reported: rows/s for
validation alone (parse + helpers + GX) and for the whole ingest. Goal: >= 200,000 rows/s end
to end on the 2-core reference machine. No timed assertions anywhere: this only measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from amad.config import ColumnSpec, ContractConfig
from amad.telemetry import dataset, schema
from amad.telemetry.corruptions import to_csv_bytes, to_parquet_bytes
from amad.telemetry.expectations import validate_frame
from amad.telemetry.ingest import ingest, validate_batch
from amad.telemetry.reference import read_reference
from amad.telemetry.schema import Contract


def make_batch(n_rows: int, n_metrics: int, n_entities: int, start: pd.Timestamp) -> pd.DataFrame:
    """``n_rows`` rows: ``n_entities`` entities at 1 s cadence, Gaussian metrics."""
    rng = np.random.default_rng(0)
    per = n_rows // n_entities
    ts = pd.date_range(start, periods=per, freq="1s", tz="UTC")
    frames = []
    for e in range(n_entities):
        values = rng.normal(size=(per, n_metrics)).astype(np.float32).astype(np.float64)
        f = pd.DataFrame(values, columns=[f"m{i:02d}" for i in range(n_metrics)])
        f.insert(0, "entity", f"e{e:03d}")
        f.insert(0, "timestamp", ts)
        f["label"] = np.zeros(per, dtype=np.int64)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def phases(data: bytes, contract: Contract, data_dir: Path, report_dir: Path) -> dict[str, float]:
    """The measured batch, one step at a time (the same steps ``ingest`` runs)."""
    raw, t_parse = timed(schema.read_batch, data, "bench")
    prepared, t_prepare = timed(schema.prepare_frame, raw, contract)
    known, t_known = timed(dataset.known_keys, data_dir, contract, prepared)
    prepared[schema.INGESTED] = schema.ingested_flags(
        prepared[contract.timestamp], prepared[contract.entity], known
    )
    reference = read_reference(data_dir)
    report, t_gx = timed(validate_frame, prepared, contract, name="bench", reference=reference)
    assert report.success, report.summary()
    stored, t_store_frame = timed(schema.storage_frame, prepared, contract)
    parts, t_partition = timed(dataset.partition, stored, contract, "0" * 64)
    _, t_report = timed(report.write, report_dir)
    return {
        "parse_s": t_parse,
        "helper_columns_s": t_prepare,
        "already_ingested_lookup_s": t_known,
        "gx_suite_s": t_gx,
        "gx_expectations": float(report.statistics.get("evaluated_expectations", 0)),
        "storage_frame_s": t_store_frame,
        "partition_s": t_partition,
        "partitions": float(len(parts)),
        "report_json_and_data_docs_s": t_report,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--metrics", type=int, default=38)
    ap.add_argument("--entities", type=int, default=20)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--out", type=Path, default=Path("bench-out/ingest.json"))
    args = ap.parse_args()

    cfg = ContractConfig(
        cadence_s=1,
        max_gap_s=10,
        columns=[ColumnSpec(name=f"m{i:02d}") for i in range(args.metrics)],
    )
    contract = Contract(cfg)
    encode = to_parquet_bytes if args.format == "parquet" else to_csv_bytes
    start = pd.Timestamp("2024-06-01T00:00:00Z")
    warm = encode(make_batch(20 * args.entities, args.metrics, args.entities, start))
    big_frame = make_batch(args.rows, args.metrics, args.entities, start + pd.Timedelta(hours=1))
    data = encode(big_frame)
    n_rows = len(big_frame)
    del big_frame

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "warm.bin").write_bytes(warm)
        (root / "batch.bin").write_bytes(data)
        _, t_warm = timed(ingest, [root / "warm.bin"], cfg, root / "data", root / "q",
                          reports_dir=root / "r")  # fmt: skip
        result = phases(data, contract, root / "data", root / "phase-report")
        (_, _), t_validate = timed(validate_batch, data, "bench", contract, root / "data")
        shutil.copytree(root / "data", root / "data2")
        report, t_ingest = timed(ingest, [root / "batch.bin"], cfg, root / "data2", root / "q",
                                 reports_dir=root / "r")  # fmt: skip
        assert report.outcomes[0].status == "accepted", report.outcomes[0].message

    figures = {
        "rows": n_rows,
        "metrics": args.metrics,
        "entities": args.entities,
        "input_format": args.format,
        "input_mb": round(len(data) / 1e6, 1),
        "warmup_s (GX import/context, first suite)": round(t_warm, 2),
        **{k: round(v, 3) for k, v in result.items()},
        "validation_s": round(t_validate, 3),
        "validation_rows_per_s": round(n_rows / t_validate),
        "ingest_s": round(t_ingest, 3),
        "ingest_rows_per_s": round(n_rows / t_ingest),
        "goal_rows_per_s": 200_000,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
