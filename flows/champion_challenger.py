"""``champion_challenger``: score champion and challenger on the same evaluation window, decide.

Both bundles are fetched from the registry with every hash verified (a tampered version fails
here and is never promoted), scored by the library on the held-out evaluation window of the same
data version, and compared by ``amad.evaluation.selection.decide_promotion`` (rules, bootstrap
interval, versions and headline, in the library). With no champion yet the challenger is
compared with the PCA baseline on that window. The decision, with its numbers, is recorded in the
registry and shown as a markdown artifact, next to a PNG of the challenger's scores vs labels.

Tasks return evaluations and take decisions as their JSON dicts (``Evaluation.to_dict()``,
``Decision.to_dict()``): that is what Prefect records, persists and passes on to ``publish`` as a
flow parameter; the flow body turns them back into records at once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.runtime import flow_run

from amad import stages
from amad.evaluation.records import Evaluation
from amad.evaluation.selection import decide_promotion
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
    version: str,
    bundle_dir: str,
    windows_uri: str,
    out_dir: str,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    """Score a bundle on the evaluation window: its ``Evaluation`` (``eval_id``, scores file)."""
    cfg = load_run_config(config_path, overrides)
    evaluation = stages.evaluate(cfg, bundle_dir, windows_uri, out_dir=out_dir)
    return replace(evaluation, model_version=version).to_dict()


@task(name="evaluate-pca-baseline")
def evaluate_baseline(
    windows_uri: str, config_path: str | None, overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """The PCA baseline's ``Evaluation`` on the same window."""
    cfg = load_run_config(config_path, overrides)
    return stages.evaluate_baseline(cfg, windows_uri).to_dict()


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
    challenger = _evaluate(challenger_version, run_dir, "challenger", windows_uri,
                           config_path, overrides)  # fmt: skip
    champion = None
    if pointer is not None:
        champion = _evaluate(pointer.version, run_dir, "champion", windows_uri,
                             config_path, overrides)  # fmt: skip
    else:
        challenger = challenger.with_baseline(
            Evaluation.from_dict(evaluate_baseline(windows_uri, config_path, overrides))
        )
    generation = pointer.generation if pointer else None
    decision = decide_promotion(challenger, champion, cfg.promote, champion_generation=generation)
    record = decision.to_dict()
    record_decision(record, run_id, config_path, overrides)
    reports.report_comparison(
        reports.comparison_markdown(
            _shown(champion), _shown(challenger) or {}, record,
            primary_metric=cfg.promote.primary_metric,
        )
    )  # fmt: skip
    plot_scores(
        challenger.scores_file,
        f"challenger {challenger_version}",
        str(run_dir / "scores_vs_labels.png"),
    )
    return record


def _evaluate(
    version: str,
    run_dir: Path,
    role: str,
    windows_uri: str,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> Evaluation:
    """Fetch (verified) and score one registry version on the window."""
    bundle_dir = fetch_version(version, str(run_dir), config_path, overrides)
    out = evaluate_bundle(
        version, bundle_dir, windows_uri, str(run_dir / role), config_path, overrides
    )
    return Evaluation.from_dict(out)


def _shown(evaluation: Evaluation | None) -> dict[str, Any] | None:
    """Metrics worth a table row (numbers only)."""
    if evaluation is None:
        return None
    return {k: v for k, v in evaluation.to_dict().items()
            if isinstance(v, int | float) and k != "scores_file"}  # fmt: skip
