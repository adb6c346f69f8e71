"""The stage functions shared by dvc.yaml and the flows (training itself is covered elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from amad import stages
from amad.config import AmadConfig
from amad.errors import DataError
from amad.series.synthetic import generate, to_frame
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import data_version, ingest
from tests.unit.helpers import small_contract_config


@pytest.fixture
def cfg(tmp_path: Path) -> AmadConfig:
    cfg = small_contract_config(tmp_path)
    series = generate(cfg.data.synthetic, n_steps=400, seed=1)
    frame = to_frame(series, entity="e1", start=pd.Timestamp("2024-01-01"), cadence_s=60,
                     columns=cfg.contract.columns)  # fmt: skip
    (tmp_path / "b0.csv").write_bytes(to_csv_bytes(frame))
    c = cfg.contract
    ingest([tmp_path / "b0.csv"], c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
    return cfg


def test_validate_stage_writes_a_report(cfg: AmadConfig, tmp_path: Path) -> None:
    summary = stages.validate(cfg, out_dir=tmp_path / "v")
    assert summary["success"] and summary["rows"] == 400
    assert (tmp_path / "v" / "data_docs.html").is_file()


def test_windows_are_keyed_by_data_version_and_reused(cfg: AmadConfig, tmp_path: Path) -> None:
    version = data_version(cfg)
    assert version is not None and version.startswith("fp-")  # not inside a DVC repository
    out = stages.windows(cfg, data_version=version)
    assert out.name == stages.windows_key(cfg, version)
    stamp = (out / "prepared.json").stat().st_mtime_ns
    assert stages.windows(cfg, data_version=version) == out  # reused, not rebuilt
    assert (out / "prepared.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="checked out"):
        stages.windows(cfg, data_version="not-this-one", checkout=False)
    with pytest.raises(DataError, match="not a DVC data version"):  # checkout needs an md5
        stages.windows(cfg, data_version="not-this-one")


def test_baseline_scores_the_evaluation_window(cfg: AmadConfig, tmp_path: Path) -> None:
    out = stages.windows(cfg, out_dir=tmp_path / "w")
    metrics = stages.evaluate_baseline(cfg, out)
    assert metrics["pca_eval_steps"] == 120  # last 30 % of 400 rows
    assert metrics["pca_nonfinite_scores"] == 0 and metrics["pca_val_recon_error"] > 0
