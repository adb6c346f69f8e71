"""The steps of ``make demo`` after the stack is up: batches, two pipeline runs, scoring, registry.

Kept apart from ``flows.demo`` so that module can set Prefect's environment before anything
imports Prefect. Batches are synthetic telemetry in the contract's format, consecutive in time:
two good ones and a broken one for the first run, newer data for the second, a fresh one to score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from prefect.states import State

from amad.config import AmadConfig
from amad.series.synthetic import generate, to_frame
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from flows.runtime import load_run_config

START = pd.Timestamp("2026-01-05T00:00:00Z")
ENTITY = "unit-1"


class _Progress(Protocol):
    def __call__(self, title: str) -> Any: ...

    def note(self, text: str) -> None: ...


def write_batch(
    cfg: AmadConfig,
    path: Path,
    *,
    start_step: int,
    n_steps: int,
    seed: int,
    anomalies: bool = True,
) -> Path:
    """A telemetry batch (CSV) of ``n_steps`` steps from absolute step ``start_step``."""
    series = generate(
        cfg.data.synthetic, n_steps=n_steps, seed=seed, start_step=start_step, anomalies=anomalies
    )
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


def write_fleet_batch(
    cfg: AmadConfig,
    path: Path,
    entities: list[str],
    *,
    start_step: int,
    n_steps: int,
    seed: int,
) -> Path:
    """One batch (CSV) holding ``n_steps`` of every entity; entity i is its own system (seed i)."""
    frames = []
    for i, entity in enumerate(entities):
        system = cfg.data.synthetic.model_copy(update={"seed": i})
        series = generate(system, n_steps=n_steps, seed=seed * 1000 + i, start_step=start_step)
        frames.append(to_frame(
            series, entity=entity,
            start=START + pd.Timedelta(seconds=start_step * cfg.contract.cadence_s),
            cadence_s=cfg.contract.cadence_s, columns=cfg.contract.columns,
            timestamp_column=cfg.contract.timestamp_column,
            entity_column=cfg.contract.entity_column, label_column=cfg.contract.label_column,
        ))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def break_batch(good: Path, bad: Path) -> Path:
    """A deliberately broken batch: a metric column missing and the timestamps shuffled."""
    frame = pd.read_csv(good)
    frame = frame.drop(columns=[frame.columns[-2]]).sample(frac=1.0, random_state=0)
    frame.to_csv(bad, index=False)
    return bad


def print_registry(cfg: AmadConfig, entity: str = ENTITY) -> None:
    """One entity's versions (data version, training metrics), champion and promotion history."""
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name, entity=entity)
    pointer = registry.champion()
    print(f"\n  Registry {registry!r}")
    print(f"  {'version':<31} {'data version':<14} {'val_recon':>9} {'val_alerts':>10}")
    for info in registry.list_versions():
        mark = "  <== champion" if pointer and pointer.version == info.version else ""
        print(
            f"  {info.version:<31} {str(info.data_version)[:12]:<14} "
            f"{_num(info.metrics.get('val_recon_error')):>9} "
            f"{_num(info.metrics.get('val_alert_rate')):>10}{mark}"
        )
    if pointer is None:
        print("  no champion")
    for event in registry.history():
        numbers = (event.get("decision") or {}).get("numbers") or {}
        shown = ", ".join(f"{k} {_num(v)}" for k, v in numbers.items() if isinstance(v, float))
        print(f"  history: {event.get('action', '?')} {event.get('version', '?')}: "
              f"{event.get('reason', '')} [{shown}]")  # fmt: skip


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
        b1 = write_batch(
            cfg, incoming / "batch-001.csv", start_step=0, n_steps=n, seed=1, anomalies=False
        )
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
        scored: State[Any] = score(  # type: ignore[assignment]  # sync call returns a State
            str(b5),
            return_state=True,
            output_uri="s3://amad-scores/scores",
            config_path=config_path,
            overrides=overrides,
        )
        if scored.is_completed() and isinstance(out := scored.result(), dict):
            progress.note(
                f"{out['rows']} rows scored by {out.get('versions', out.get('version'))}: "
                f"{out['alerts']} alerts "
                f"({100 * out['alert_rate']:.1f} %) -> {out['outputs'][0]}"
            )
        else:
            progress.note(f"{scored.name}: {scored.message}")
    with progress("The registry"):
        print_registry(cfg)
    store = store_from_config(cfg.publish)
    champion = Registry(store, cfg.publish.model_name, entity=ENTITY).champion()
    return 0 if champion is not None else 1


def _report(result: Any, progress: _Progress) -> None:
    if not isinstance(result, dict):
        progress.note(f"result: {result!r}")
        return
    progress.note(
        f"data version {str(result['data_version'])[:12]}: {result['accepted']} accepted, "
        f"{result['quarantined']} quarantined"
    )
    for entity, rec in sorted(result["entities"].items()):
        verdict = "PROMOTED" if rec["promoted"] else "NOT promoted"
        progress.note(f"{entity}: challenger {rec['challenger']} {verdict}: {rec['reason']}")
        ev = rec.get("evaluation") or {}
        shown = ", ".join(f"{who} {_num(ev.get(who))}" for who in ("challenger", "champion", "pca"))
        progress.note(f"  {ev.get('metric', '?')} on window {ev.get('eval_id')}: {shown}")
    for entity, why in sorted(result.get("failed", {}).items()):
        progress.note(f"{entity}: FAILED: {why}")
