"""Mean metrics per score variant from ``tune_scores.py`` outputs, split into dev and held-out.

    .venv/bin/python benchmarks/tune_report.py runs/tune/smd-base/tune.json \\
        --dev machine-1-2,machine-1-6,machine-2-1,machine-3-2 [--top 12]

Prints a markdown table; rows sorted by the dev mean VUS-PR (the choice is made on dev only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = ("vus_pr", "auc_pr", "auc_roc")


def means(rows: dict, entities: list[str], variant: str) -> list[float]:
    vals = [[rows[e][variant][m] for e in entities if variant in rows[e]] for m in METRICS]
    return [float(np.nanmean(v)) if v else float("nan") for v in vals]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--dev", required=True)
    parser.add_argument("--top", type=int, default=100)
    parser.add_argument("--only", default="", help="comma list of variants to show")
    args = parser.parse_args()
    dev_set = args.dev.split(",")
    for path in args.files:
        doc = json.loads(Path(path).read_text())
        rows = doc["rows"]
        dev = [e for e in rows if e in dev_set]
        held = [e for e in rows if e not in dev_set]
        names = [k for k in rows[dev[0]] if not k.startswith("_")]
        if args.only:
            keep = args.only.split(",")
            names = [
                n
                for n in names
                if {n, n.split(":")[-1], n.split(":")[-1].split("@")[0]} & set(keep)
            ]
        table = sorted(((means(rows, dev, n), means(rows, held, n), n) for n in names),
                       key=lambda r: -r[0][0])  # fmt: skip
        fit_s = np.mean([rows[e]["_info"]["fit_s"] for e in rows])
        print(f"\n{path} overrides={doc['overrides']} dev={len(dev)} held-out={len(held)} "
              f"(mean AMAD fit {fit_s:.0f}s)")  # fmt: skip
        print(
            "| score | dev VUS-PR | dev AUC-PR | dev AUC-ROC | held VUS-PR | held AUC-PR | held AUC-ROC |"
        )
        print("|---|---|---|---|---|---|---|")
        for d, h, n in table[: args.top]:
            print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in (*d, *h)) + " |")


if __name__ == "__main__":
    main()
