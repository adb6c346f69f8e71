"""Benchmark output: the results document (``results.json``, its means), the ``results.md``
tables and the score plots.

Kept apart from ``amad.bench.runner`` (which runs the protocol) so the rendering can change without
touching what is measured. Plots use matplotlib's Agg backend and never open a window.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from amad.files import atomic_write, finite_or_none

log = logging.getLogger(__name__)

RESULTS_JSON, RESULTS_MD = "results.json", "results.md"

#: (metric key, column title) of the summary table, in BASELINES.md order first.
SUMMARY_COLUMNS = (
    ("auc_roc", "AUC-ROC"),
    ("auc_pr", "AUC-PR"),
    ("vus_roc", "VUS-ROC"),
    ("vus_pr", "VUS-PR"),
    ("best_f1", "best-F1"),
    ("affiliation_f1", "aff-F1"),
    ("legacy_point_adjusted_f1", "F1-PA honest (legacy)"),
    ("legacy_point_adjusted_f1_leaky", "F1-PA leaky (legacy)"),
    ("f1", "F1"),
    ("event_f1", "event-F1"),
    ("pa_k_auc", "PA%K AUC"),
    ("alert_rate", "alert rate"),
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _summary_table(doc: dict[str, Any]) -> list[str]:
    means = doc.get("means", {})
    head = [
        "method",
        "n",
        *(title for _, title in SUMMARY_COLUMNS),
        "fit s (total)",
        "score s (total)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in means.items():
        cells = [name, str(row["n_entities"])]
        cells += [_fmt(row.get(key)) for key, _ in SUMMARY_COLUMNS]
        cells += [f"{row['fit_s_total']:.0f}", f"{row['score_s_total']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _entity_table(doc: dict[str, Any], detectors: list[str], key: str) -> list[str]:
    lines = ["| entity | " + " | ".join(detectors) + " |", "|" + "---|" * (len(detectors) + 1)]
    for entity, row in doc["entities"].items():
        cells = []
        for name in detectors:
            r = row.get(name)
            if r is None:
                cells.append("")
            elif r.get("status") != "ok":
                cells.append("failed")
            else:
                cells.append(_fmt(r["metrics"].get(key)))
        lines.append(f"| {entity} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """The ``results.md`` text for a results document."""
    spec = doc["spec"]
    detectors = list(spec["detectors"])
    failures = [
        f"- {entity} / {name}: {r.get('error')}"
        for entity, row in doc["entities"].items()
        for name, r in row.items()
        if r.get("status") != "ok"
    ]
    versions = ", ".join(f"{k} {v}" for k, v in doc.get("versions", {}).items())
    wall = doc.get("wall_s")
    out = [
        f"# Benchmark: {spec['dataset']} ({len(doc['entities'])} of "
        f"{len(doc['entities_requested'])} entities), profile {spec['profile']}",
        "",
        f"- Threshold: {doc['threshold_protocol']}; anomaly ratio r = "
        f"{doc['anomaly_ratio_percent']:g} %. VUS buffer up to {spec['max_buffer']} steps.",
        "- Means are unweighted over the entities each detector finished (column n).",
        "- F1-PA columns are the legacy point-adjusted F1, for comparison with papers only; "
        "'leaky' pools held-out and test scores for its threshold.",
        f"- Versions: {versions}. Seed {spec['seed']}. "
        + (f"Wall time {wall / 60:.1f} min." if wall else "Run in progress or interrupted."),
        "",
        "## Means",
        *_summary_table(doc),
        "",
        "## VUS-PR per entity",
        *_entity_table(doc, detectors, "vus_pr"),
        "",
        "## AUC-ROC per entity",
        *_entity_table(doc, detectors, "auc_roc"),
    ]
    if failures:
        out += ["", "## Failures", *failures]
    return "\n".join(out) + "\n"


def _ranked(doc: dict[str, Any], name: str) -> list[tuple[float, str]]:
    found = []
    for entity, row in doc["entities"].items():
        r = row.get(name, {})
        value = r.get("metrics", {}).get("vus_pr") if r.get("status") == "ok" else None
        if value is not None and not math.isnan(value):
            found.append((float(value), entity))
    return sorted(found)


def plot_scores(
    path: Path, scores: np.ndarray, labels: np.ndarray, threshold: float, title: str
) -> None:
    """Scores against shaded labelled segments, with the alert threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.2))
    steps = np.arange(len(scores))
    ax.fill_between(
        steps, 0, 1, where=labels.astype(bool), color="tab:red", alpha=0.25,
        transform=ax.get_xaxis_transform(), step="mid", label="labelled anomaly",
    )  # fmt: skip
    ax.plot(steps, scores, lw=0.6, color="tab:blue", label="score")
    ax.axhline(threshold, color="black", lw=0.8, ls="--", label="threshold")
    lo, hi = np.percentile(scores, [0.5, 99.9])
    ax.set_ylim(lo, max(hi, threshold) * 1.05 if hi > 0 else hi)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("test step")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(
    out: Path,
    doc: dict[str, Any],
    detectors: list[str],
    *,
    data_loader: Callable[[str], np.ndarray],
) -> list[Path]:
    """Plots of each detector's best and worst entity by VUS-PR; returns the files written."""
    written = []
    for name in detectors:
        ranked = _ranked(doc, name)
        if not ranked:
            continue
        picks = {"worst": ranked[0], "best": ranked[-1]}
        for tag, (vus_pr, entity) in picks.items():
            r = doc["entities"][entity][name]
            scores = np.load(out / r["scores_file"])
            labels = data_loader(entity)
            path = out / "plots" / f"{name}-{tag}-{entity}.png"
            title = f"{name} on {entity} ({tag} VUS-PR {vus_pr:.3f}, AUC-ROC {r['metrics']['auc_roc']:.3f})"
            plot_scores(path, scores, labels, r["metrics"]["threshold"], title)
            written.append(path)
    return written


# ---------------------------------------------------------------- the results document


def summarise(results: dict[str, dict[str, dict[str, Any]]], detectors: list[str]) -> dict:
    """Unweighted means of every metric over the entities each detector finished."""
    means: dict[str, dict[str, Any]] = {}
    for name in detectors:
        done = [r[name] for r in results.values() if name in r and r[name].get("status") == "ok"]
        if not done:
            continue
        keys = done[0]["metrics"].keys()
        row: dict[str, Any] = {k: _nanmean([d["metrics"][k] for d in done]) for k in keys}
        row["n_entities"] = len(done)
        row["fit_s_total"] = float(sum(d["fit_s"] for d in done))
        row["score_s_total"] = float(sum(d["score_s"] for d in done))
        means[name] = row
    return means


def _nanmean(values: list[float]) -> float:
    arr = np.array(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else math.nan


def write_results(out: Path, detectors: list[str], doc: dict[str, Any]) -> None:
    """Rewrite results.json and results.md under ``out`` from ``doc`` (after every pair)."""
    doc["means"] = summarise(doc["entities"], detectors)
    doc["updated_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps(finite_or_none(doc), indent=1, default=_json_default, allow_nan=False)
    atomic_write(out / RESULTS_JSON, text)
    atomic_write(out / RESULTS_MD, render_markdown(doc))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
