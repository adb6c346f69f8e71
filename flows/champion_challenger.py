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

The champion's score PSI on the new window above ``promote.max_score_psi`` is drift: one
``amad.drift.detected`` event (subject ``score``) per champion version and window
(``flows.drift``), marked ``retrain_follows`` (the challenger was just trained on this data).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, task

from amad import stages
from amad.evaluation.drift import score_drift
from amad.evaluation.records import Evaluation
from amad.evaluation.selection import decide_promotion
from flows import reports
from flows.drift import act_on_drift
from flows.runtime import (
    STORAGE_RETRIES,
    current_run_id,
    registry_for,
    route_library_logs,
    run_config,
    run_context,
)


@task(name="fetch-version", **STORAGE_RETRIES)
def fetch_version(version: str, dest: str, context: dict[str, Any]) -> str:
    """Download a registry version into ``dest``; every file's sha256 is checked."""
    return str(registry_for(run_config(context)).fetch(version, Path(dest) / version))


@task(name="evaluate-bundle")
def evaluate_bundle(
    version: str, bundle_dir: str, windows_uri: str, out_dir: str, context: dict[str, Any]
) -> dict[str, Any]:
    """Score a bundle on the evaluation window: its ``Evaluation`` (``eval_id``, scores file)."""
    evaluation = stages.evaluate(run_config(context), bundle_dir, windows_uri, out_dir=out_dir)
    return replace(evaluation, model_version=version).to_dict()


@task(name="evaluate-pca-baseline")
def evaluate_baseline(windows_uri: str, context: dict[str, Any]) -> dict[str, Any]:
    """The PCA baseline's ``Evaluation`` on the same window."""
    return stages.evaluate_baseline(run_config(context), windows_uri).to_dict()


@task(name="record-decision", **STORAGE_RETRIES)
def record_decision(decision: dict[str, Any], run_id: str, context: dict[str, Any]) -> str:
    return registry_for(run_config(context)).record_decision(decision, run_id=run_id)


def _evaluate(
    version: str, run_dir: Path, role: str, windows_uri: str, context: dict[str, Any]
) -> Evaluation:
    """Fetch (verified) and score one registry version on the window."""
    bundle_dir = fetch_version(version, str(run_dir), context)
    out = evaluate_bundle(version, bundle_dir, windows_uri, str(run_dir / role), context)
    return Evaluation.from_dict(out)


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
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decide whether ``challenger_version`` replaces the champion; returns the decision dict.

    ``context``: the parent run's (``RunContext.to_dict()``); without it the config is resolved
    here from ``config_path`` and ``overrides``.
    """
    route_library_logs()
    ctx = run_context(config_path, overrides, context)
    cfg, mine = ctx.cfg(), ctx.to_dict()
    run_id = current_run_id()
    run_dir = Path(work_dir) / run_id
    pointer = registry_for(cfg).champion()
    challenger = _evaluate(challenger_version, run_dir, "challenger", windows_uri, mine)
    champion = None
    if pointer is not None:
        champion = _evaluate(pointer.version, run_dir, "champion", windows_uri, mine)
        drift = score_drift(champion, cfg.promote.max_score_psi, entity=cfg.data.entity)
        act_on_drift([drift.to_dict()] if drift else [], mine, retrain_follows=True)
    else:
        challenger = challenger.with_baseline(
            Evaluation.from_dict(evaluate_baseline(windows_uri, mine))
        )
    generation = pointer.generation if pointer else None
    decision = decide_promotion(challenger, champion, cfg.promote, champion_generation=generation)
    record = decision.to_dict()
    record_decision(record, run_id, mine)
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


def _shown(evaluation: Evaluation | None) -> dict[str, Any] | None:
    """Metrics worth a table row (numbers only)."""
    if evaluation is None:
        return None
    return {k: v for k, v in evaluation.to_dict().items()
            if isinstance(v, int | float) and k != "scores_file"}  # fmt: skip
