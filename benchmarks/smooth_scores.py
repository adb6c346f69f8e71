"""Sweep the score-smoothing width on the per-step scores an ``amad bench`` run dumped.

    .venv/bin/python benchmarks/smooth_scores.py runs/bench/smd-amad-final --dataset smd \\
        --root ../shared/datasets/SMD --detectors amad,ae,pca

For each detector and width it prints the dev / held-out / all means of VUS-PR and AUC-ROC for a
centred moving average (``amad.series.windows.smooth_steps``, what ``score.smooth`` does) and a trailing
one (causal: what an online scorer could use without delay). No retraining: smoothing is
post-processing, and these metrics need no threshold. Widths are chosen on the dev entities of
``benchmarks/TUNING.md`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from amad.config import DataConfig
from amad.evaluation.metrics import evaluate
from amad.series.loaders import load_series
from amad.series.windows import smooth_steps

DEV = {
    "smd": {"machine-1-2", "machine-1-6", "machine-2-1", "machine-3-2"},
    "msl": {"C-1", "F-7", "P-11", "T-4"},
}


def trailing(scores: np.ndarray, width: int) -> np.ndarray:
    """Mean of the last ``width`` steps (the first steps repeat the first score)."""
    padded = np.pad(scores, (width - 1, 0), mode="edge")
    csum = np.concatenate(([0.0], np.cumsum(padded)))
    return (csum[width:] - csum[:-width]) / width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="an amad bench --out folder")
    parser.add_argument("--dataset", choices=sorted(DEV), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--detectors", default="amad")
    parser.add_argument("--widths", default="1,5,10,20,50")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    for det in args.detectors.split(","):
        results: dict[tuple[int, str], dict[str, tuple[float, float]]] = {}
        for path in sorted((args.run / "scores" / det).glob("*.npy")):
            cfg = DataConfig(source=args.dataset, root=args.root, entity=path.stem)
            labels = load_series(cfg).labels
            raw = np.load(path)
            for w in widths:
                modes = {"centred": smooth_steps(raw, w), "trailing": trailing(raw, w)}
                for mode, scores in modes.items():
                    m = evaluate(scores, labels)
                    results.setdefault((w, mode), {})[path.stem] = (m["vus_pr"], m["auc_roc"])
        print(f"\n{det}: | width | mode | dev VUS-PR / AUC-ROC | held-out | all |")
        for (w, mode), per in results.items():
            groups = [
                [v for e, v in per.items() if e in DEV[args.dataset]],
                [v for e, v in per.items() if e not in DEV[args.dataset]],
                list(per.values()),
            ]
            cells = [
                f"{np.mean([g[0] for g in x]):.3f} / {np.mean([g[1] for g in x]):.3f}"
                for x in groups
            ]
            print(f"| {w} | {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
