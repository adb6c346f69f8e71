"""The steps of ``make demo`` after the stack is up: batches, two pipeline runs, scoring, registry.

Kept apart from ``flows.demo`` so that module can set Prefect's environment before anything
imports Prefect. Batches are synthetic telemetry in the contract's format, consecutive in time:
two good ones and a broken one for the first run, newer data for the second, a fresh one to score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from amad.config import AmadConfig
from amad.registry import Registry
from amad.storage import store_from_config
from amad.synthetic import generate, to_frame
from flows.runtime import load_run_config

START = pd.Timestamp("2026-01-05T00:00:00Z")
ENTITY = "unit-1"


class _Progress(Protocol):
    def __call__(self, title: str) -> Any: ...

    def note(self, text: str) -> None: ...


def write_batch(cfg: AmadConfig, path: Path, *, start_step: int, n_steps: int, seed: int) -> Path:
    """A telemetry batch (CSV) of ``n_steps`` steps from absolute step ``start_step``."""
    series = generate(cfg.data.synthetic, n_steps=n_steps, seed=seed, start_step=start_step)
    frame = to_frame(
        series,
        entity=ENTITY,
        start=START + pd.Timedelta(seconds=start_step * cfg.contract.cadence_s),
        cadence_s=cfg.contract.cadence_s,
        columns=cfg.contract.columns,
        timestamp_column=cfg.contract.timestamp_column,
        entity_column=cfg.contract.entity_column,
        label_column=cfg.contract.label_column,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def break_batch(good: Path, bad: Path) -> Path:
    """A deliberately broken batch: a metric column missing and the timestamps shuffled."""
    frame = pd.read_csv(good)
    frame = frame.drop(columns=[frame.columns[-2]]).sample(frac=1.0, random_state=0)
    frame.to_csv(bad, index=False)
    return bad


def print_registry(cfg: AmadConfig) -> None:
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name)
    pointer = registry.champion()
    key = cfg.promote.primary_metric
    print(f"\nRegistry {registry!r}, model {cfg.publish.model_name!r}")
    print(f"  {'version':<32} {'data version':<16} {key:>8} {'alerts':>7}  champion")
    for info in registry.list_versions():
        metric = info.metrics.get(key, info.metrics.get(f"test_{key}"))
        alerts = info.metrics.get("val_alert_rate")
        mark = "  <== champion" if pointer and pointer.version == info.version else ""
        print(
            f"  {info.version:<32} {str(info.data_version)[:16]:<16} "
            f"{_num(metric):>8} {_num(alerts):>7}{mark}"
        )
    if pointer:
        print(f"  champion: {pointer.version} (generation {pointer.generation}): {pointer.reason}")
    for event in registry.history():
        print(f"  history: {event.get('action', '?')} {event.get('version', '?')}")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def run_loop(
    workspace: Path, *, config_path: str, overrides: dict[str, Any], progress: _Progress
) -> int:
    from flows.pipeline import pipeline
    from flows.score import score

    cfg = load_run_config(config_path, overrides)
    incoming = workspace / "incoming"
    n = cfg.data.synthetic.train_steps // 2
    with progress("Writing synthetic telemetry batches"):
        b1 = write_batch(cfg, incoming / "batch-001.csv", start_step=0, n_steps=n, seed=1)
        b2 = break_batch(b1, incoming / "batch-002-broken.csv")
        b3 = write_batch(cfg, incoming / "batch-003.csv", start_step=n, n_steps=n, seed=3)
        b4 = write_batch(cfg, incoming / "batch-004.csv", start_step=2 * n, n_steps=n, seed=4)
        b5 = write_batch(cfg, incoming / "batch-005.csv", start_step=3 * n, n_steps=n // 2, seed=5)
        progress.note(f"5 batches of {n} steps x {len(cfg.contract.columns)} metrics in {incoming}")
    with progress("Pipeline run 1: ingest 3 batches (1 broken), train, promote the first champion"):
        first = pipeline([str(b1), str(b2), str(b3)], config_path=config_path, overrides=overrides)
        _report(first, progress)
    with progress("Pipeline run 2: no new data (ends as a named Completed state)"):
        state = pipeline([], config_path=config_path, overrides=overrides, return_state=True)
        progress.note(f"state: {state.name}: {state.message}")
    with progress("Pipeline run 3: ingest newer data, retrain, champion/challenger"):
        second = pipeline([str(b4)], config_path=config_path, overrides=overrides)
        _report(second, progress)
    with progress("Scoring a fresh batch with the champion"):
        scored = score(
            str(b5),
            output_uri="s3://amad-scores/scores",
            config_path=config_path,
            overrides=overrides,
        )
        progress.note(f"{scored}")
    with progress("The registry"):
        print_registry(cfg)
    return 0 if isinstance(first, dict) and first.get("champion") else 1


def _report(result: Any, progress: _Progress) -> None:
    if not isinstance(result, dict):
        progress.note(f"result: {result!r}")
        return
    progress.note(
        f"data version {str(result['data_version'])[:12]}: {result['accepted']} accepted, "
        f"{result['quarantined']} quarantined; challenger {result['challenger']}"
    )
    verdict = "PROMOTED" if result["promoted"] else "kept the champion"
    progress.note(f"{verdict}: {result['reason']}")
