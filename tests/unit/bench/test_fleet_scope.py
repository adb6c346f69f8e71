"""``amad@fleet`` in the benchmark: one pooled model, per-entity calibration, its cost recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from amad.bench.detectors import AMADDetector, is_fleet, make_detector
from amad.bench.fleet import adopt_pooled
from amad.cli.bench import bench
from amad.errors import DataError
from tests.unit.bench.test_runner import SMALL, TINY_AMAD


def test_fleet_names_are_amad_variants_only() -> None:
    assert is_fleet("amad@fleet") and is_fleet("amad-mixup@fleet")
    assert not is_fleet("pca@fleet") and not is_fleet("amad")
    det = make_detector("amad@fleet", overrides={"model.d_model": 16})
    assert isinstance(det, AMADDetector) and det.name == "amad@fleet"


def test_a_fleet_detector_without_its_pooled_model_is_an_error() -> None:
    det = make_detector("amad@fleet")
    x = np.zeros((300, 2), dtype=np.float32)
    with pytest.raises(DataError, match="no pooled model"):
        adopt_pooled(det, x, x, {})


def test_bench_trains_one_pooled_model_for_the_fleet(tmp_path: Path) -> None:
    args = ["--dataset", "synthetic", "--entities", "seed-0,seed-1",
            "--detectors", "amad,amad@fleet", "--out", str(tmp_path), "--max-buffer", "20",
            *SMALL, *TINY_AMAD]  # fmt: skip
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "results.json").read_text())
    pooled_s = doc["fleet_fit_s"]["amad@fleet"]
    assert set(doc["fleet_fit_s"]) == {"amad@fleet"} and pooled_s > 0
    pairs = [doc["entities"][e]["amad@fleet"] for e in ("seed-0", "seed-1")]
    assert all(p["status"] == "ok" and p["info"]["scope"] == "fleet" for p in pairs)
    assert all(p["info"]["pooled_fit_s"] == pooled_s for p in pairs)
    assert all(p["fit_s"] >= pooled_s / 2 for p in pairs)  # a share of the pooled fit each
    assert pairs[0]["seed"] == pairs[1]["seed"] == 0  # one model, one seed
    assert pairs[0]["threshold"] != pairs[1]["threshold"]  # thresholds stay per entity
    own = [doc["entities"][e]["amad"]["seed"] for e in ("seed-0", "seed-1")]
    assert own[0] != own[1]  # per-entity models keep per-entity seeds
    assert doc["means"]["amad@fleet"]["n_entities"] == 2
