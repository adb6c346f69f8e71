"""``amad train`` + ``amad score`` on one real SMD machine and one real MSL channel (slow).

A tiny model and a few hundred windows per epoch keep this to seconds; what is checked is the
plumbing the issue asks for: a verified bundle from the real layouts, and per-step scores aligned
row for row with the entity's test file (and its labels).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.cli import main
from amad.detector.bundle import verify_bundle

pytestmark = pytest.mark.slow

TINY = [
    "--set", "windows.length=50", "--set", "windows.train_stride=5",
    "--set", "windows.score_stride=25", "--set", "model.d_model=16", "--set", "model.n_heads=2",
    "--set", "model.n_layers=1", "--set", "model.d_ff=32", "--set", "train.epochs=1",
    "--set", "train.max_windows_per_epoch=128", "--set", "train.device=cpu",
    "--set", "train.min_steps=0",
]  # fmt: skip


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    return out.out


def _msl_labels(root: Path, channel: str, n: int) -> np.ndarray:
    meta = pd.read_csv(root / "labeled_anomalies.csv")
    row = meta[(meta.spacecraft == "MSL") & (meta.chan_id == channel)].iloc[0]
    y = np.zeros(n, dtype=np.int8)
    for s, e in ast.literal_eval(row.anomaly_sequences):
        y[s : e + 1] = 1
    return y


@pytest.mark.parametrize(
    ("source", "layout", "entity"), [("smd", "SMD", "machine-1-2"), ("msl", "MSL", "C-1")]
)
def test_train_and_score_a_real_entity(
    datasets_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    layout: str,
    entity: str,
) -> None:
    root = datasets_root / layout
    bundle = tmp_path / "bundle"
    _run(["train", *TINY, "--source", source, "--root", str(root), "--entity", entity,
          "--out", str(bundle), "--no-progress"], capsys)  # fmt: skip
    manifest = verify_bundle(bundle)
    test = np.load(root / "test" / f"{entity}.npy")
    assert manifest["n_channels"] == test.shape[1]

    out = tmp_path / "scores.parquet"
    _run(["score", str(bundle), "--source", source, "--root", str(root), "--entity", entity,
          "--out", str(out), "--no-progress"], capsys)  # fmt: skip
    scores = pd.read_parquet(out)
    assert len(scores) == len(test) and list(scores["step"]) == list(range(len(test)))
    assert np.isfinite(scores["score"]).all() and (scores["reconstruction"] >= 0).all()
    if source == "smd":
        expected = np.loadtxt(root / "test_label" / f"{entity}.txt", delimiter=",")
    else:
        expected = _msl_labels(root, entity, len(test))
    np.testing.assert_array_equal(scores["label"].to_numpy(), expected.astype(np.int8))

    # the same rows scored from the raw test file give the same scores
    raw = tmp_path / "test.npy"
    np.save(raw, test)
    out2 = tmp_path / "scores2.csv"
    _run(["score", str(bundle), "--input", str(raw), "--out", str(out2)], capsys)
    np.testing.assert_allclose(pd.read_csv(out2)["score"], scores["score"], rtol=1e-5)
    assert json.loads((bundle / "metrics.json").read_text())["val_alert_rate"] <= 0.05
