"""Issue 9's bars from ``amad bench`` runs: the default AMAD against the best baselines.

    .venv/bin/python benchmarks/bars.py runs/bench/smd-i9/results.json \\
        --dev machine-1-2,machine-1-6,machine-2-1,machine-3-2,machine-3-10

Per group of entities (dev, held-out, all; means over the entities every detector finished):

- **raw bar**: the detector's VUS-PR over the best *unsmoothed* baseline's (goal >= 1.25x);
- **fair bar**: over the best baseline *with the same post-processing* (the ``-smooth``
  controls, which apply AMAD's ``score.smooth``; goal >= 1.05x);
- **AUC-ROC**: the detector's against the best of every baseline, smoothed or not.

Baselines are the names in ``--baselines`` (default: pca, iforest, ae, ar, kmeans), with their
``-smooth`` controls when the run has them. Prints one markdown table per results file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

RAW = ("pca", "iforest", "ae", "ar", "kmeans")
GOALS = {"raw": 1.25, "fair": 1.05}


def group_means(
    doc: dict[str, Any], detectors: list[str], entities: list[str], metric: str
) -> dict[str, float]:
    """Mean ``metric`` per detector over the ``entities`` where *every* detector finished."""
    rows = doc["entities"]
    common = _common(doc, detectors, entities)
    if not common:
        return {d: float("nan") for d in detectors}
    return {d: float(np.mean([rows[e][d]["metrics"][metric] for e in common])) for d in detectors}


def bars(
    doc: dict[str, Any], entities: list[str], detector: str = "amad",
    baselines: tuple[str, ...] = RAW,
) -> dict[str, Any]:  # fmt: skip
    """The three bars for ``detector`` over ``entities``: values, best baselines and ratios."""
    present = {d for row in doc["entities"].values() for d in row}
    raw = [b for b in baselines if b in present]
    fair = [f"{b}-smooth" for b in baselines if f"{b}-smooth" in present]
    names = [detector, *raw, *fair]
    vus = group_means(doc, names, entities, "vus_pr")
    auc = group_means(doc, names, entities, "auc_roc")
    out: dict[str, Any] = {"n": len(_common(doc, names, entities)), "vus_pr": vus[detector],
                           "auc_roc": auc[detector]}  # fmt: skip
    for kind, pool in (("raw", raw), ("fair", fair)):
        best = max(pool, key=lambda d: vus[d]) if pool else None
        value = vus[best] if best else float("nan")
        out[kind] = {"best": best, "vus_pr": value, "ratio": vus[detector] / value,
                     "goal": GOALS[kind], "met": vus[detector] >= GOALS[kind] * value}  # fmt: skip
    best_auc = max(raw + fair, key=lambda d: auc[d])
    out["auc"] = {"best": best_auc, "auc_roc": auc[best_auc], "met": auc[detector] > auc[best_auc]}
    return out


def _common(doc: dict[str, Any], names: list[str], entities: list[str]) -> list[str]:
    """The ``entities`` on which every detector in ``names`` finished."""
    rows = doc["entities"]
    return [
        e for e in entities
        if e in rows and all(rows[e].get(d, {}).get("status") == "ok" for d in names)
    ]  # fmt: skip


def table(doc: dict[str, Any], dev: set[str], detector: str = "amad") -> list[str]:
    """Markdown lines: one row per group (dev, held-out, all)."""
    entities = list(doc["entities"])
    groups = {
        "dev": [e for e in entities if e in dev],
        "held-out": [e for e in entities if e not in dev],
        "all": entities,
    }
    lines = [
        f"| {detector} | n | VUS-PR | raw bar: best unsmoothed | ratio (goal 1.25) | "
        "fair bar: best smoothed | ratio (goal 1.05) | AUC-ROC | best baseline AUC-ROC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, members in groups.items():
        if not members:
            continue
        b = bars(doc, members, detector)
        raw, fair, auc = b["raw"], b["fair"], b["auc"]
        lines.append(
            f"| {name} | {b['n']} | {b['vus_pr']:.3f} | {raw['best']} {raw['vus_pr']:.3f} | "
            f"{raw['ratio']:.2f}x {_yes(raw['met'])} | {fair['best']} {fair['vus_pr']:.3f} | "
            f"{fair['ratio']:.2f}x {_yes(fair['met'])} | {b['auc_roc']:.3f} | "
            f"{auc['best']} {auc['auc_roc']:.3f} {_yes(auc['met'])} |"
        )
    return lines


def _yes(met: bool) -> str:
    return "(met)" if met else "(**not met**)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="results.json of amad bench runs")
    parser.add_argument("--dev", required=True, help="comma list of dev entities")
    parser.add_argument("--detector", default="amad")
    args = parser.parse_args()
    for path in args.results:
        doc = json.loads(Path(path).read_text())
        print(f"\n{path}: {doc['spec']['dataset']}, profile {doc['spec']['profile']}")
        print("\n".join(table(doc, set(args.dev.split(",")), args.detector)))


if __name__ == "__main__":
    main()
