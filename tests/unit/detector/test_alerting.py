"""A scored batch's alerts file: no flags, no model needed; a flag without a champion is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from amad.config import build_config
from amad.detector.alerting import batch_alerts
from amad.errors import DataError

CFG = build_config({})


def _files(tmp_path: Path, flagged: bool) -> tuple[str, str]:
    ts, ent = CFG.contract.timestamp_column, CFG.contract.entity_column
    stamps = pd.date_range("2026-01-05", periods=4, freq="60s", tz="UTC")
    batch = pd.DataFrame({ts: stamps, ent: "unit-1", **{c.name: 1.0 for c in CFG.contract.columns}})
    batch.to_csv(tmp_path / "b.csv", index=False)
    scores = pd.DataFrame(
        {ts: stamps, ent: "unit-1", "score": 0.1, "flag": [False, flagged, False, False]}
    )
    scores.to_parquet(tmp_path / "scores.parquet", index=False)
    return str(tmp_path / "b.csv"), str(tmp_path / "scores.parquet")


def test_no_flags_means_no_alerts_and_a_stable_data_version(tmp_path: Path) -> None:
    source, scores = _files(tmp_path, flagged=False)
    out = batch_alerts(CFG, {}, source, scores, out_dir=tmp_path / "out")
    again = batch_alerts(CFG, {}, source, scores, out_dir=tmp_path / "out2")
    assert out["alerts"] == [] and out["data_version"] == again["data_version"]
    assert json.loads(Path(out["file"]).read_text())["alerts"] == []


def test_a_flag_without_a_champion_is_refused(tmp_path: Path) -> None:
    source, scores = _files(tmp_path, flagged=True)
    with pytest.raises(DataError, match="no champion"):
        batch_alerts(CFG, {}, source, scores, out_dir=tmp_path / "out")
