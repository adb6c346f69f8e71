"""Drills on rejected batches (issue 13, items 5, 7, 8): evidence kept, near-duplicates caught,
one poison object never stops the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.storage.s3 import S3Store
from amad.telemetry import dataset
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest

CFG = ContractConfig(columns=[ColumnSpec(name=f"m{i}") for i in range(3)])
T0 = pd.Timestamp("2024-06-01T00:00:00Z")


def frame(start: pd.Timestamp, seed: int = 0, n: int = 40) -> pd.DataFrame:
    series = generate(SyntheticConfig(n_channels=3), n_steps=n, seed=seed)
    return to_frame(series, entity="e1", start=start, cadence_s=60, columns=CFG.columns)


def run(sources: list[str | Path], root: Path):  # type: ignore[no-untyped-def]
    return ingest(sources, CFG, root / "data", root / "q", reports_dir=root / "reports")


@pytest.mark.parametrize("name", ["report.json", "data_docs.html", "gx_result.json"])
def test_quarantine_keeps_the_original_bytes_beside_reports_of_any_name(
    tmp_path: Path, name: str
) -> None:
    bad = frame(T0)
    bad.loc[3, "m1"] = np.inf
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_bytes(to_csv_bytes(bad))
    outcome = run([src], tmp_path).outcomes[0]
    assert outcome.status == "quarantined"
    qdir = Path(outcome.quarantine_dir or "")
    assert (qdir / "original" / name).read_bytes() == src.read_bytes()
    assert "finite_values" in json.loads((qdir / "report.json").read_text())["failed_checks"]


@pytest.mark.parametrize("shift", [pd.Timedelta(seconds=30), pd.Timedelta(milliseconds=1)])
def test_near_duplicates_of_accepted_rows_are_rejected(tmp_path: Path, shift: pd.Timedelta) -> None:
    first, again, nxt = tmp_path / "a.csv", tmp_path / "a-shifted.csv", tmp_path / "b.csv"
    first.write_bytes(to_csv_bytes(frame(T0)))
    again.write_bytes(to_csv_bytes(frame(T0 + shift)))
    nxt.write_bytes(to_csv_bytes(frame(T0 + pd.Timedelta(minutes=40), seed=1)))
    report = run([first, again, nxt], tmp_path)
    assert [o.status for o in report.outcomes] == ["accepted", "quarantined", "accepted"]
    assert report.outcomes[1].failed_checks == ["not_already_ingested"]
    assert len(dataset.load_dataset(tmp_path / "data", dataset.Contract(CFG))) == 80


def test_an_s3_key_with_a_space_is_rejected_and_the_others_land(
    moto_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_store.endpoint_url or "")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    for key, start in [("a.csv", T0), ("b c.csv", T0 + pd.Timedelta(minutes=40)),
                       ("d.csv", T0 + pd.Timedelta(minutes=80))]:  # fmt: skip
        body = to_csv_bytes(frame(start))
        moto_store.client.put_object(Bucket=moto_store.bucket, Key=f"in/{key}", Body=body)
    report = run([f"s3://{moto_store.bucket}/in"], tmp_path)
    by_name = {o.source.rsplit("/", 1)[-1]: o for o in report.outcomes}
    assert by_name["b c.csv"].status == "quarantined"
    assert by_name["b c.csv"].failed_checks == ["unreadable_source"]
    assert by_name["a.csv"].status == by_name["d.csv"].status == "accepted"


def test_a_valid_one_row_batch_can_pass(tmp_path: Path) -> None:
    cfg = CFG.model_copy(update={"min_rows": 1})
    one = tmp_path / "one.csv"
    one.write_bytes(to_csv_bytes(frame(T0, n=1)))
    report = ingest([one], cfg, tmp_path / "data", tmp_path / "q", reports_dir=tmp_path / "r")
    assert [o.status for o in report.outcomes] == ["accepted"], report.outcomes[0].message
