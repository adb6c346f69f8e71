"""Shared helpers for flow tests: a tiny configuration and a workspace with synthetic batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PARAMS = str(REPO / "params.yaml")


def tiny_overrides(root: Path) -> dict[str, Any]:
    """A model and data small enough for seconds of CPU, all state under ``root``."""
    return {
        "data.synthetic.train_steps": 1200,
        "windows.length": 32,
        "windows.score_stride": 16,
        "windows.train_stride": 4,
        "model.d_model": 16,
        "model.n_heads": 2,
        "model.n_layers": 1,
        "model.d_ff": 16,
        "train.epochs": 1,
        "train.max_windows_per_epoch": 64,
        "promote.require_beats_pca": False,
        "promote.max_alert_rate": 1.0,  # a 1-epoch toy model alerts a lot; not under test here
        # ... and its score distribution is unstable; the PSI guardrail is tested in
        # tests/unit/evaluation/test_selection.py
        "promote.max_score_psi": 1e6,
        "publish.store": "local",
        "publish.local_root": str(root / "registry"),
        "contract.data_dir": str(root / "data"),
        "contract.quarantine_dir": str(root / "quarantine"),
        "contract.reports_dir": str(root / "validation"),
    }


def make_workspace(root: Path) -> tuple[dict[str, Any], list[Path]]:
    """A DVC repository (no git) under ``root`` and three consecutive good batches."""
    from amad.telemetry import versioning
    from flows.demo_steps import write_batch
    from flows.runtime import load_run_config

    root.mkdir(parents=True, exist_ok=True)
    versioning.init_repo(root, no_scm=True)
    overrides = tiny_overrides(root)
    cfg = load_run_config(PARAMS, overrides)
    n = cfg.data.synthetic.train_steps // 2
    batches = [
        write_batch(cfg, root / "in" / f"b{i}.csv", start_step=i * n, n_steps=n, seed=i)
        for i in range(3)
    ]
    return overrides, batches
