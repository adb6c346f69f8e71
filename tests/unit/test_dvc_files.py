"""``dvc.yaml`` and ``dvc.lock`` as a DVC user meets them: metrics and plots at git-tracked paths,
and a lock that names the pipeline's current files (refreshed by a real ``dvc repro``)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())
LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text())
METRICS = {"train": "metrics/train.json", "evaluate": "metrics/evaluate.json"}
PLOT = "metrics/evaluate_scores.csv"


def _paths(entries: list[Any]) -> dict[str, dict[str, Any]]:
    """``[path | {path: options}]`` -> ``{path: options}``."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, str):
            out[entry] = {}
        else:
            out.update({str(k): dict(v or {}) for k, v in entry.items()})
    return out


@pytest.mark.parametrize(("stage", "path"), sorted(METRICS.items()))
def test_metrics_are_declared_uncached(stage: str, path: str) -> None:
    metrics = _paths(PIPELINE["stages"][stage].get("metrics", []))
    assert metrics.get(path, {}).get("cache") is False, metrics


def test_the_score_table_is_an_output_and_a_plot_of_score_threshold_and_label() -> None:
    outs = _paths(PIPELINE["stages"]["evaluate"]["outs"])
    assert outs.get(PLOT, {}).get("cache") is False
    [plot] = [p for entry in PIPELINE["plots"] for p in entry.values()]
    assert plot["x"] == "step" and plot["template"] == "linear"
    assert plot["y"] == {PLOT: ["score", "threshold", "label"]}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_metrics_and_plot_are_not_git_ignored() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [*METRICS.values(), PLOT]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.returncode == 1, f"git ignores {ignored.stdout.split()}"  # 1: none ignored


def test_no_stage_declares_a_git_ignored_metric_or_plot() -> None:
    for name, stage in PIPELINE["stages"].items():
        for key in ("metrics", "plots"):
            for path in _paths(stage.get(key, [])):
                assert not path.startswith("runs/"), f"{name}: {path} is under git-ignored runs/"


def test_the_lock_names_exactly_the_declared_deps_and_outs() -> None:
    """A lock written by ``dvc repro`` of this dvc.yaml (a stale one names moved modules)."""
    assert set(LOCK["stages"]) == set(PIPELINE["stages"])
    for name, stage in PIPELINE["stages"].items():
        locked = LOCK["stages"][name]
        assert {d["path"] for d in locked["deps"]} == set(_paths(stage["deps"])), name
        declared = {p for key in ("outs", "metrics", "plots") for p in _paths(stage.get(key, []))}
        assert {o["path"] for o in locked["outs"]} == declared, name
        for dep in locked["deps"]:
            assert not dep["path"].startswith("amad/") or (ROOT / dep["path"]).exists(), dep


def test_committed_metrics_match_the_lock() -> None:
    """The metrics files in git are the ones the locked run wrote (copied from a clean repro)."""
    for name, path in [*METRICS.items(), ("evaluate", PLOT)]:
        [out] = [o for o in LOCK["stages"][name]["outs"] if o["path"] == path]
        assert hashlib.md5((ROOT / path).read_bytes()).hexdigest() == out["md5"], path
