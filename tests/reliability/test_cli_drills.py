"""Drills on the CLI (issue 13, item 11): columns matched by name, ./params.yaml read everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from amad.config import build_config
from amad.detector.recipe import train_prepared
from amad.series.loaders import load_series
from amad.series.windows import build_windows
from tests.unit.helpers import run_cli as run

TINY = {
    "data": {"source": "synthetic",
             "synthetic": {"n_channels": 3, "train_steps": 400, "test_steps": 300, "seed": 1}},
    "windows": {"length": 20, "train_stride": 2, "score_stride": 10, "val_fraction": 0.25},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_windows_per_epoch": 32,
              "device": "cpu"},
}  # fmt: skip
NAMES = ["m00", "m01", "m02"]


@pytest.fixture(scope="module")
def named_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = build_config(TINY)
    prepared = build_windows(load_series(cfg.data), cfg.windows)
    out = tmp_path_factory.mktemp("named") / "bundle"
    train_prepared(cfg, prepared, out, progress=False, channels=NAMES)
    return out


def _table(tmp_path: Path, columns: list[str], name: str) -> Path:
    x = np.random.default_rng(0).normal(size=(120, len(NAMES)))
    frame = pd.DataFrame(x, columns=NAMES)
    frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=120, freq="min"))
    if "extra" in columns:
        frame["extra"] = 1.0
    path = tmp_path / name
    frame[columns].to_csv(path, index=False)
    return path


def test_reordered_columns_score_the_same(
    named_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = _table(tmp_path, ["timestamp", *NAMES], "straight.csv")
    shuffled = _table(tmp_path, ["m02", "timestamp", "m00", "m01"], "shuffled.csv")
    results = []
    for src in (straight, shuffled):
        out = tmp_path / f"{src.stem}-scores.csv"
        code, _, err = run(["score", str(named_bundle), "--input", str(src), "--out", str(out)],
                           capsys)  # fmt: skip
        assert code == 0, err
        results.append(pd.read_csv(out))
    np.testing.assert_allclose(results[0]["score"], results[1]["score"], rtol=1e-6)
    assert (results[0]["flag"] == results[1]["flag"]).all()


@pytest.mark.parametrize(
    ("columns", "named"),
    [(["timestamp", "m00", "m02"], "m01"), (["timestamp", *NAMES, "extra"], "extra")],
)
def test_missing_or_extra_column_is_a_data_error_naming_it(
    named_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    columns: list[str],
    named: str,
) -> None:
    src = _table(tmp_path, columns, "bad.csv")
    out = tmp_path / "scores.csv"
    code, _, err = run(["score", str(named_bundle), "--input", str(src), "--out", str(out)], capsys)
    assert code == 4 and named in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_train_reads_params_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", "--out", "b", "--no-progress", "--no-evaluate"], capsys)
    assert code == 0, err
    trained = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert trained["model"]["d_model"] == 16 and trained["train"]["epochs"] == 1


def test_registry_reads_params_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"publish": {"model_name": "frompar"}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMAD_STORE", raising=False)
    (tmp_path / "reg").mkdir()
    code, out, err = run(["registry", "list", "--store", str(tmp_path / "reg")], capsys)
    assert code == 0, err
    assert "model frompar" in out


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--store", "ftp://host/x"], 2, "unsupported store"),
        (["--model", "a/b"], 2, "invalid model name"),
        ([], 9, "no registry at"),
    ],
)
def test_registry_failures_are_one_line_with_their_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, says: str
) -> None:
    argv = ["registry", "list", "--store", str(tmp_path / "missing"), *args]
    got, out, err = run(argv, capsys)
    assert got == code and says in err and len(err.strip().splitlines()) == 1, err
    assert "no versions" not in out


def test_an_os_error_is_one_line_and_exit_1(
    named_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _table(tmp_path, ["timestamp", *NAMES], "in.csv")
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "scores.csv"  # its folder cannot be created: NotADirectoryError
    code, _, err = run(["score", str(named_bundle), "--input", str(src), "--out", str(out)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bad", "out_of_range"], "needs a contract column with a min or max"),
        (["--bad", "repeated_rows", "--batches", "1"], "needs the previous batch"),
    ],
)
def test_synth_refuses_an_impossible_corruption_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    argv = ["synth", "--out", str(tmp_path / "in"), "--rows", "50", *args]
    code, _, err = run(argv, capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
