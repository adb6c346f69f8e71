"""Compare alert-threshold rules on the validation and test scores an ``amad bench`` run dumped.

    .venv/bin/python benchmarks/threshold_rules.py runs/bench/msl-thr --dataset msl \\
        --root ../shared/datasets/MSL --detectors amad,amad-no-smooth

Every rule sees only the held-out validation scores of the training period
(``val_scores/<detector>/<entity>.npy``); test labels are used to report alert rate, point F1,
event F1 and affiliation F1. Rules are chosen on the dev entities of ``benchmarks/TUNING.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from amad.config import DataConfig
from amad.detector.thresholds import pot_threshold
from amad.evaluation.metrics import threshold_metrics
from amad.series.loaders import load_series

DEV = {
    "smd": {"machine-1-2", "machine-1-6", "machine-2-1", "machine-3-2"},
    "msl": {"C-1", "F-7", "P-11", "T-4"},
}
KEYS = ("alert_rate", "f1", "event_f1", "affiliation_f1")


def rules(ratio: float) -> dict[str, Callable[[np.ndarray], float]]:
    """name -> threshold from validation scores (``ratio`` = anomaly ratio in percent)."""

    def pot(risk: float) -> Callable[[np.ndarray], float]:
        return lambda v: pot_threshold(v, init_quantile=0.98, risk=risk)[0]

    return {
        f"percentile {100 - ratio:g}": lambda v: float(np.percentile(v, 100 - ratio)),
        "max": lambda v: float(v.max()),
        "1.5 x max": lambda v: 1.5 * float(v.max()),
        "POT risk 1e-3": pot(1e-3),
        "POT risk 1e-4": pot(1e-4),
        "median + 2 x (p99 - median)": lambda v: float(
            np.median(v) + 2 * (np.percentile(v, 99) - np.median(v))
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--dataset", choices=sorted(DEV), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--detectors", default="amad")
    args = parser.parse_args()
    logging.getLogger("amad.detector.thresholds").setLevel(
        logging.ERROR
    )  # short tails: POT falls back
    doc = json.loads((args.run / "results.json").read_text())
    table = rules(float(doc["anomaly_ratio_percent"]))
    print("| detector | rule | dev: alert / F1 / event-F1 / aff-F1 | held-out | all |")
    print("|---|---|---|---|---|")
    for det in args.detectors.split(","):
        per: dict[str, dict[str, dict[str, float]]] = {name: {} for name in table}
        for entity, row in doc["entities"].items():
            if row.get(det, {}).get("status") != "ok":
                continue
            labels = load_series(
                DataConfig(source=args.dataset, root=args.root, entity=entity)
            ).labels
            val = np.load(args.run / row[det]["val_scores_file"])
            test = np.load(args.run / row[det]["scores_file"])
            for name, rule in table.items():
                per[name][entity] = threshold_metrics(test, labels, rule(val))
        for name, results in per.items():
            groups = [
                [m for e, m in results.items() if e in DEV[args.dataset]],
                [m for e, m in results.items() if e not in DEV[args.dataset]],
                list(results.values()),
            ]
            cells = [" / ".join(f"{np.mean([m[k] for m in g]):.3f}" for k in KEYS) for g in groups]
            print(f"| {det} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
