"""Ingest: append-only partitions, idempotency by content hash, quarantine, crash safety."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amad.cli import cli
from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.telemetry import dataset
from amad.telemetry.corruptions import to_csv_bytes, to_parquet_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.reference import read_reference
from amad.telemetry.schema import Contract

CFG = ContractConfig(columns=[ColumnSpec(name=f"m{i}") for i in range(3)], entities=["e1", "e2"])
CONTRACT = Contract(CFG)


def batch(b: int, n: int = 60) -> pd.DataFrame:
    syn = SyntheticConfig(n_channels=3)
    parts = [
        to_frame(
            generate(syn, n_steps=n, seed=k, start_step=b * n),
            entity=e,
            start=pd.Timestamp("2024-01-01T23:30:00Z") + pd.Timedelta(minutes=b * n),
            cadence_s=60,
            columns=CFG.columns,
        )
        for k, e in enumerate(["e1", "e2"])
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"data_dir": tmp_path / "data", "quarantine_dir": tmp_path / "q"}


def run(paths: list[Path], dirs: dict[str, Path], cfg: ContractConfig = CFG):  # type: ignore[no-untyped-def]
    return ingest(paths, cfg, reports_dir=dirs["data_dir"].parent / "reports", **dirs)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_accepted_rows_land_in_entity_day_partitions(tmp_path: Path, dirs: dict[str, Path]) -> None:
    first = write(tmp_path / "b0.csv", to_csv_bytes(batch(0)))
    report = run([first], dirs)
    assert [o.status for o in report.outcomes] == ["accepted"] and report.changed
    parts = dataset.committed_parts(dirs["data_dir"])
    # 60 steps from 23:30 cross midnight: two days for each of two entities
    assert len(parts) == 4
    assert {Path(p).parts[1] for p in parts} == {"entity=e1", "entity=e2"}
    assert {Path(p).parts[2] for p in parts} == {"date=2024-01-01", "date=2024-01-02"}
    loaded = dataset.load_dataset(dirs["data_dir"], CONTRACT)
    assert len(loaded) == 120 and loaded["m0"].dtype == np.float32
    assert read_reference(dirs["data_dir"]) is not None
    docs = Path(report.outcomes[0].report_dir or "") / "data_docs.html"
    assert docs.is_file()


def test_parquet_batches_are_accepted_too(tmp_path: Path, dirs: dict[str, Path]) -> None:
    path = write(tmp_path / "b0.parquet", to_parquet_bytes(batch(0)))
    assert run([path], dirs).outcomes[0].status == "accepted"


def test_same_batch_twice_changes_nothing(tmp_path: Path, dirs: dict[str, Path]) -> None:
    path = write(tmp_path / "b0.csv", to_csv_bytes(batch(0)))
    run([path], dirs)
    before = dataset.tree_digest(dirs["data_dir"])
    again = run([path, tmp_path], dirs)  # the folder holds the same file
    assert [o.status for o in again.outcomes] == ["duplicate", "duplicate"]
    assert not again.changed and dataset.tree_digest(dirs["data_dir"]) == before


def test_appends_are_versioned_by_content(tmp_path: Path, dirs: dict[str, Path]) -> None:
    run([write(tmp_path / "b0.csv", to_csv_bytes(batch(0)))], dirs)
    fp0 = dataset.dataset_fingerprint(dirs["data_dir"])
    report = run([write(tmp_path / "b1.csv", to_csv_bytes(batch(1)))], dirs)
    assert report.changed and report.fingerprint_before == fp0
    assert len(dataset.load_dataset(dirs["data_dir"], CONTRACT)) == 240
    assert len(dataset.manifests(dirs["data_dir"])) == 2


def test_rejected_batch_is_quarantined_byte_identical_once(
    tmp_path: Path, dirs: dict[str, Path]
) -> None:
    bad = batch(0)
    bad.loc[3, "m1"] = np.inf
    path = write(tmp_path / "bad.csv", to_csv_bytes(bad))
    outcome = run([path], dirs).outcomes[0]
    assert outcome.status == "quarantined" and "finite_values" in outcome.failed_checks
    qdir = Path(outcome.quarantine_dir or "")
    assert (qdir / "original" / "bad.csv").read_bytes() == path.read_bytes()
    saved = json.loads((qdir / "report.json").read_text())
    assert "finite_values" in saved["failed_checks"]
    stamp = (qdir / "report.json").stat().st_mtime_ns
    assert run([path], dirs).outcomes[0].status == "quarantined"
    assert (qdir / "report.json").stat().st_mtime_ns == stamp  # never overwritten
    assert dataset.manifests(dirs["data_dir"]) == []


def test_crash_between_moves_leaves_the_old_dataset_then_recovers(
    tmp_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run([write(tmp_path / "b0.csv", to_csv_bytes(batch(0)))], dirs)
    old = dataset.load_dataset(dirs["data_dir"], CONTRACT)
    old_fp = dataset.dataset_fingerprint(dirs["data_dir"])
    b1 = write(tmp_path / "b1.csv", to_csv_bytes(batch(1)))
    real_move, calls = dataset._move, []

    def crashing_move(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("simulated crash")
        real_move(src, dst)

    monkeypatch.setattr(dataset, "_move", crashing_move)
    with pytest.raises(OSError, match="simulated crash"):
        run([b1], dirs)
    assert calls[0].is_file()  # one part of the new batch is already in place ...
    pd.testing.assert_frame_equal(dataset.load_dataset(dirs["data_dir"], CONTRACT), old)
    assert dataset.dataset_fingerprint(dirs["data_dir"]) == old_fp  # ... but not visible
    monkeypatch.setattr(dataset, "_move", real_move)

    report = run([b1], dirs)  # recovery commits the staged batch; b1 is then a duplicate
    assert [o.status for o in report.outcomes] == ["duplicate"]
    clean = {k: tmp_path / "clean" / k for k in dirs}
    run([tmp_path / "b0.csv", b1], clean)
    assert dataset.tree_digest(dirs["data_dir"]) == dataset.tree_digest(clean["data_dir"])


def test_crash_while_staging_is_dropped(
    tmp_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run([write(tmp_path / "b0.csv", to_csv_bytes(batch(0)))], dirs)
    before = dataset.tree_digest(dirs["data_dir"])
    real_write, calls = dataset.pq.write_table, []

    def crashing_write(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dataset.pq, "write_table", crashing_write)
    with pytest.raises(OSError, match="disk full"):
        run([write(tmp_path / "b1.csv", to_csv_bytes(batch(1)))], dirs)
    monkeypatch.setattr(dataset.pq, "write_table", real_write)
    assert dataset.tree_digest(dirs["data_dir"]) == before
    assert dataset.recover(dirs["data_dir"]) == []
    # only the dataset lock file (amad.telemetry.lock) is left in the staging folder
    assert not any(p.is_dir() for p in (dirs["data_dir"] / dataset.STAGING).iterdir())


def test_dataset_series_holds_out_the_last_part(tmp_path: Path, dirs: dict[str, Path]) -> None:
    run([write(tmp_path / "b0.csv", to_csv_bytes(batch(0, n=200)))], dirs)
    series = dataset.dataset_series(dirs["data_dir"], CONTRACT, "e2")
    assert series.entity == "e2"
    assert series.train.shape == (140, 3) and series.test.shape == (60, 3)
    assert series.labels is not None and series.labels.shape == (60,)


def test_cli_synth_then_ingest(tmp_path: Path) -> None:
    runner = CliRunner()
    params = tmp_path / "params.yaml"
    params.write_text(
        "contract:\n"
        f"  data_dir: {tmp_path / 'data'}\n  quarantine_dir: {tmp_path / 'q'}\n"
        f"  reports_dir: {tmp_path / 'reports'}\n"
    )
    out = tmp_path / "batches"
    args = ["synth", "--out", str(out), "--batches", "2", "--rows", "50", "--entities", "a,b",
            "--bad", "wrong_delimiter", "--config", str(params)]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "batch-000.csv",
        "batch-001-bad-wrong_delimiter.csv",
    ]
    result = runner.invoke(cli, ["ingest", str(out), "--no-dvc", "--config", str(params)])
    assert "accepted" in result.output and "quarantined" in result.output
    assert "delimiter" in result.output
    assert len(dataset.manifests(tmp_path / "data")) == 1


def test_a_rejection_is_logged_once(
    tmp_path: Path, dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    bad = batch(0)
    bad["m1"] = "not a number"
    path = write(tmp_path / "bad.csv", to_csv_bytes(bad))
    with caplog.at_level(logging.INFO, logger="amad"):
        report = run([path], dirs)
    assert [o.status for o in report.outcomes] == ["quarantined"]
    # each record once: in the full suite a handler left on the amad logger hands caplog every
    # record twice; a second emitted line is still a second record and still fails
    records = list({id(r): r for r in caplog.records}.values())
    said = [r for r in records if "bad.csv: rejected" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING, [r.name for r in said]
    assert "quarantined at" in said[0].getMessage()
