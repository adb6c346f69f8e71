"""``amad train`` and ``amad score`` end to end on tiny synthetic data, and their error exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from amad.cli import main
from tests.unit.helpers import run_cli as run

TINY = {
    "data": {"source": "synthetic",
             "synthetic": {"n_channels": 3, "train_steps": 400, "test_steps": 300, "seed": 1}},
    "windows": {"length": 20, "train_stride": 2, "score_stride": 10, "val_fraction": 0.25},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "train": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "max_windows_per_epoch": 48,
              "device": "cpu"},
}  # fmt: skip
N_CH = 3


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    cfg = root / "params.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = root / "bundle"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(cfg), "--set", "score.threshold=pot",
              "--set", "score.pot_init_quantile=0.9", "--out", str(out), "--no-progress"])  # fmt: skip
    assert exc.value.code == 0
    return out


def test_train_writes_a_complete_bundle_with_overrides_applied(bundle: Path) -> None:
    cfg = yaml.safe_load((bundle / "config.yaml").read_text())
    assert cfg["score"]["threshold"] == "pot" and cfg["model"]["d_model"] == 16
    assert cfg["score"]["orientation"] in ("paper", "flipped")  # 'auto' resolved at training
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["n_channels"] == N_CH and len(manifest["data_fingerprint"]) == 64
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert 0.0 <= metrics["val_alert_rate"] <= 1.0 and "test_vus_pr" in metrics
    assert len(json.loads((bundle / "history.json").read_text())) == 2


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_score_a_file_gives_one_row_per_step(
    bundle: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(0).normal(size=(137, N_CH)).astype(np.float32)
    src = tmp_path / f"in{suffix}"
    frame = pd.DataFrame(x, columns=[f"m{i:02d}" for i in range(N_CH)])
    frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=137, freq="min"))
    if suffix == ".npy":
        np.save(src, x)
    elif suffix == ".csv":
        frame.to_csv(src, index=False)
    else:
        frame.to_parquet(src, index=False)
    out = tmp_path / "scores.csv"
    code, stdout, _ = run(["score", str(bundle), "--input", str(src), "--out", str(out)], capsys)
    assert code == 0 and "scored 137 steps" in stdout
    scores = pd.read_csv(out)
    assert list(scores["step"]) == list(range(137))
    assert scores[["score", "reconstruction", "association"]].notna().all().all()
    threshold = json.loads((bundle / "threshold.json").read_text())["value"]
    assert (scores["flag"] == (scores["score"] > threshold)).all()


def test_score_a_dataset_entity_aligns_with_its_test_split(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.parquet"
    code, _, err = run(["score", str(bundle), "--source", "synthetic", "--out", str(out)], capsys)
    assert code == 0, err
    scores = pd.read_parquet(out)
    assert len(scores) == 300 and scores["label"].isin([0, 1]).all() and scores["label"].sum() > 0


def _write_bad(path: Path, kind: str) -> None:
    if kind == "channels":
        np.save(path, np.zeros((50, N_CH + 2), dtype=np.float32))
    elif kind == "nan":
        x = np.zeros((50, N_CH), dtype=np.float32)
        x[7, 1] = np.nan
        np.save(path, x)
    elif kind == "empty":
        path.write_text("m00,m01,m02\n")
    elif kind == "unreadable":
        path.write_bytes(b"\x00garbage, not parquet")
    elif kind == "text":
        pd.DataFrame({"m00": ["a"] * 30, "m01": [1.0] * 30, "m02": [1.0] * 30}).to_csv(path)


@pytest.mark.parametrize(
    ("kind", "suffix", "message"),
    [
        ("channels", ".npy", "5 channels, the model expects 3"),
        ("nan", ".npy", "NaN/inf values (first at step 7, channel 1)"),
        ("empty", ".csv", "no rows"),
        ("unreadable", ".parquet", "cannot read"),
        ("text", ".csv", "non-numeric column"),
        ("missing", ".csv", "not found"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message_and_writes_nothing(
    bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    suffix: str,
    message: str,
) -> None:
    src = tmp_path / f"bad{suffix}"
    if kind != "missing":
        _write_bad(src, kind)
    out = tmp_path / "out" / "scores.parquet"
    code, _, err = run(["score", str(bundle), "--input", str(src), "--out", str(out)], capsys)
    assert code == 4 and message in err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_tampered_bundle_exits_with_the_artifact_code(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "threshold.json").write_text('{"value": 0}')
    np.save(tmp_path / "x.npy", np.zeros((50, N_CH), dtype=np.float32))
    code, _, err = run(["score", str(copy), "--input", str(tmp_path / "x.npy"),
                        "--out", str(tmp_path / "s.csv")], capsys)  # fmt: skip
    assert code == 6 and "threshold.json" in err and not (tmp_path / "s.csv").exists()


def test_usage_errors(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["score", str(bundle), "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 2 and "exactly one of --input" in err
    np.save(tmp_path / "x.npy", np.zeros((50, N_CH), dtype=np.float32))
    code, _, err = run(["score", str(bundle), "--input", str(tmp_path / "x.npy"),
                        "--out", str(tmp_path / "s.txt")], capsys)  # fmt: skip
    assert code == 2 and ".parquet or .csv" in err


def test_train_config_errors_name_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["train", "--set", "train.epoch=2", "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "train.epoch" in err and not (tmp_path / "b").exists()


def test_train_refuses_to_overwrite_an_existing_bundle(
    bundle: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    code, _, err = run(["train", "--config", str(cfg), "--set", "train.epochs=1",
                        "--out", str(bundle), "--no-progress", "--no-evaluate"], capsys)  # fmt: skip
    assert code == 6 and "already exists" in err


def test_threads_option_sets_torch_threads(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    before = torch.get_num_threads()
    np.save(tmp_path / "x.npy", np.zeros((50, N_CH), dtype=np.float32))
    try:
        code, _, _ = run(["score", str(bundle), "--input", str(tmp_path / "x.npy"),
                          "--out", str(tmp_path / "s.csv"), "--threads", "1"], capsys)  # fmt: skip
        assert code == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_a_sigkilled_training_run_resumes_to_the_same_bundle(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "epochs": 4,
                                                      "max_windows_per_epoch": 48}}))  # fmt: skip

    def cmd(ckpt: str, out: str) -> list[str]:
        return [sys.executable, "-c", "from amad.cli import main; main()", "train",
                "--config", str(cfg), "--checkpoint-dir", str(tmp_path / ckpt),
                "--out", str(tmp_path / out), "--no-progress", "--no-evaluate", "--threads", "1"]  # fmt: skip

    victim = subprocess.Popen(cmd("ck", "killed"), stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "ck" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    done = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= done < 4 and not (tmp_path / "killed").exists()

    subprocess.run(cmd("ck", "resumed"), check=True, capture_output=True)
    subprocess.run(cmd("full_ck", "full"), check=True, capture_output=True)
    same = ("weights.safetensors", "history.json", "threshold.json")
    for name in same:
        resumed = json.loads((tmp_path / "resumed" / "manifest.json").read_text())["files"][name]
        full = json.loads((tmp_path / "full" / "manifest.json").read_text())["files"][name]
        if name == "history.json":  # timings differ; losses must not
            h1 = json.loads((tmp_path / "resumed" / name).read_text())
            h2 = json.loads((tmp_path / "full" / name).read_text())
            assert [e["train_loss"] for e in h1] == [e["train_loss"] for e in h2]
        else:
            assert resumed["sha256"] == full["sha256"], name
