"""``champion_challenger``: score champion and challenger on the same evaluation window, decide.

Both bundles are fetched from the registry with every hash verified (a tampered version fails
here and is never promoted), scored by the library on the held-out evaluation window of the same
data version, and compared by ``amad.evaluation.selection.decide``. With no champion yet the challenger is
compared with the PCA baseline on that window. The decision, with its numbers, is recorded in the
registry and shown as a markdown artifact, next to a PNG of the challenger's scores vs labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.runtime import flow_run

from amad import stages
from amad.evaluation.bootstrap import gain_interval_from_files
from amad.evaluation.selection import decide
from amad.storage.registry import Registry
from flows import reports
from flows.runtime import STORAGE_RETRIES, load_run_config, registry_for, route_library_logs


def _registry(config_path: str | None, overrides: dict[str, Any] | None) -> Registry:
    """The registry of the run's entity (``data.entity``), else the model's."""
    return registry_for(load_run_config(config_path, overrides))


@task(name="fetch-version", **STORAGE_RETRIES)
def fetch_version(
    version: str, dest: str, config_path: str | None, overrides: dict[str, Any] | None
) -> str:
    """Download a registry version into ``dest``; every file's sha256 is checked."""
    return str(_registry(config_path, overrides).fetch(version, Path(dest) / version))


@task(name="evaluate-bundle")
def evaluate_bundle(
    bundle_dir: str,
    windows_uri: str,
    out_dir: str,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    """Score a bundle on the evaluation window; metrics (with ``eval_id``) and a scores file."""
    cfg = load_run_config(config_path, overrides)
    return dict(stages.evaluate(cfg, bundle_dir, windows_uri, out_dir=out_dir))


@task(name="evaluate-pca-baseline")
def evaluate_baseline(
    windows_uri: str, config_path: str | None, overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """The PCA baseline on the same window, as ``pca_*`` metrics."""
    cfg = load_run_config(config_path, overrides)
    return dict(stages.evaluate_baseline(cfg, windows_uri))


@task(name="record-decision", **STORAGE_RETRIES)
def record_decision(
    decision: dict[str, Any],
    run_id: str,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> str:
    return _registry(config_path, overrides).record_decision(decision, run_id=run_id)


@task(name="plot-scores")
def plot_scores(scores_file: str | None, title: str, out_png: str) -> str | None:
    """PNG of per-step scores vs labels from the evaluation's scores file (npz)."""
    if not scores_file or not Path(scores_file).is_file():
        return None
    with np.load(scores_file, allow_pickle=False) as data:
        labels = data["labels"] if "labels" in data.files else None
        threshold = float(data["threshold"]) if "threshold" in data.files else None
        png = reports.render_scores_png(data["scores"], labels, threshold, title=title)
    path = reports.write_png(png, Path(out_png))
    reports.report_scores_plot(png, location=str(path.resolve()))
    return str(path)


@flow(name="champion-challenger")
def champion_challenger(
    challenger_version: str,
    windows_uri: str,
    work_dir: str = "runs/evaluation",
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decide whether ``challenger_version`` replaces the champion; returns the decision dict."""
    route_library_logs()
    cfg = load_run_config(config_path, overrides)
    run_id = str(flow_run.get_id() or "local")
    run_dir = Path(work_dir) / run_id
    pointer = _registry(config_path, overrides).champion()
    challenger_dir = fetch_version(challenger_version, str(run_dir), config_path, overrides)
    challenger = evaluate_bundle(
        challenger_dir, windows_uri, str(run_dir / "challenger"), config_path, overrides
    )
    champion: dict[str, Any] | None = None
    if pointer is not None:
        champion_dir = fetch_version(pointer.version, str(run_dir), config_path, overrides)
        champion = evaluate_bundle(
            champion_dir, windows_uri, str(run_dir / "champion"), config_path, overrides
        )
    else:
        challenger = {**challenger, **evaluate_baseline(windows_uri, config_path, overrides)}
    interval = gain_interval_from_files(
        (champion or {}).get("scores_file"),
        challenger.get("scores_file"),
        n_boot=cfg.promote.bootstrap_samples,
        level=cfg.promote.bootstrap_level,
    )  # None without a champion or labels: the point gain decides
    decision = decide(champion, challenger, cfg.promote, interval=interval).to_dict()
    decision.update(
        challenger_version=challenger_version,
        champion_version=pointer.version if pointer else None,
        champion_generation=pointer.generation if pointer else None,
        evaluation=_headline(champion, challenger, cfg.promote.primary_metric),
    )
    record_decision(decision, run_id, config_path, overrides)
    reports.report_comparison(
        reports.comparison_markdown(
            _shown(champion),
            _shown(challenger) or {},
            decision,
            primary_metric=cfg.promote.primary_metric,
        )
    )
    plot_scores(
        challenger.get("scores_file"),
        f"challenger {challenger_version}",
        str(run_dir / "scores_vs_labels.png"),
    )
    return decision


def _headline(
    champion: dict[str, Any] | None, challenger: dict[str, Any], key: str
) -> dict[str, Any]:
    """The primary metric of champion, challenger and (first model) PCA on the same window."""
    return {
        "metric": key,
        "eval_id": challenger.get("eval_id"),
        "challenger": challenger.get(key),
        "champion": champion.get(key) if champion else None,
        "pca": challenger.get(f"pca_{key}"),
    }


def _shown(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metrics worth a table row (numbers only)."""
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if isinstance(v, int | float) and k != "scores_file"}
