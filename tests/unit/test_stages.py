"""The stage functions shared by dvc.yaml and the flows (training itself is covered elsewhere)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad import stages
from amad.config import AmadConfig
from amad.errors import DataError
from amad.evaluation import stage_files
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
    assert metrics.eval_steps == 120  # last 30 % of 400 rows
    assert metrics.nonfinite_scores == 0 and (metrics.val_recon_error or 0) > 0


def _two_entities(cfg: AmadConfig, tmp_path: Path) -> AmadConfig:
    series = generate(cfg.data.synthetic, n_steps=400, seed=2)
    frame = to_frame(series, entity="e2", start=pd.Timestamp("2024-01-01"), cadence_s=60,
                     columns=cfg.contract.columns)  # fmt: skip
    (tmp_path / "b1.csv").write_bytes(to_csv_bytes(frame))
    c = cfg.contract
    ingest([tmp_path / "b1.csv"], c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
    return cfg


def test_fleet_entities_are_the_configured_list_or_every_entity(
    cfg: AmadConfig, tmp_path: Path
) -> None:
    cfg = _two_entities(cfg, tmp_path)
    assert stages.fleet_entities(cfg) == ["e1", "e2"]
    listed = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"entities": ["e2"]})})
    assert stages.fleet_entities(listed) == ["e2"]


def test_windows_never_pick_one_of_several_entities_by_sort_order(
    cfg: AmadConfig, tmp_path: Path
) -> None:
    cfg = _two_entities(cfg, tmp_path)
    with pytest.raises(DataError, match=r"set data\.entity"):
        stages.windows(cfg, out_dir=tmp_path / "w")
    e2 = cfg.model_copy(update={"data": cfg.data.model_copy(update={"entity": "e2"})})
    out = stages.windows(e2, out_dir=tmp_path / "w2")
    assert stages.windows_key(e2, "v") != stages.windows_key(cfg, "v")
    assert (out / "window_key.json").read_text().count('"e2"') == 1


def test_scores_npz_and_score_plot_are_byte_stable(cfg: AmadConfig, tmp_path: Path) -> None:
    """What dvc.lock hashes: the same arrays give the same bytes (np.savez stamps the time)."""
    arrays = {"scores": np.linspace(0, 1, 7), "threshold": np.float64(0.5)}
    stage_files.save_npz(tmp_path / "a.npz", arrays)
    time.sleep(2.1)  # zip member times have two-second resolution
    stage_files.save_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as loaded:
        np.testing.assert_array_equal(loaded["scores"], arrays["scores"])


def test_score_plot_keeps_every_step_or_the_peak_of_each_block(tmp_path: Path) -> None:
    scores = np.zeros(1000)
    scores[537] = 9.0
    labels = np.zeros(1000, dtype=np.int8)
    labels[538] = 1
    short = stage_files.write_score_plot(tmp_path / "s.csv", scores[:10], 0.5, labels[:10])
    assert short.read_text().splitlines()[:2] == ["step,score,threshold,label", "0,0,0.5,0"]
    assert len(short.read_text().splitlines()) == 11
    table = pd.read_csv(stage_files.write_score_plot(tmp_path / "p.csv", scores, 0.5, labels,
                                                max_rows=400))  # fmt: skip
    assert len(table) == 334 and table["step"].iloc[1] == 3  # blocks of ceil(1000/400) steps
    peak = table.loc[table["score"].idxmax()]
    assert (peak["step"], peak["score"], peak["label"]) == (537, 9.0, 1)
    assert table["label"].sum() == 1 and (table["threshold"] == 0.5).all()
