"""Dev / held-out / all means of an ``amad bench`` run, for choosing defaults honestly.

    .venv/bin/python benchmarks/split_report.py runs/bench/smd-s2/results.json \\
        --dev machine-1-2,machine-1-6,machine-2-1,machine-3-2

Choices are made on the dev entities only (the sets of ``benchmarks/TUNING.md``); the held-out
columns are the honest estimate of what a choice is worth. Prints a markdown table sorted by the
dev mean VUS-PR; a detector's means cover the entities it finished (``n``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = ("vus_pr", "auc_roc", "auc_pr", "affiliation_f1", "alert_rate")
HEAD = ("VUS-PR", "AUC-ROC", "AUC-PR", "aff-F1", "alert")


def _rows(doc: dict) -> dict[str, dict[str, dict[str, float]]]:
    """entity -> detector -> metrics, finished pairs only."""
    return {
        entity: {d: p["metrics"] for d, p in row.items() if p.get("status") == "ok"}
        for entity, row in doc["entities"].items()
    }


def _means(rows: dict, entities: list[str], det: str) -> tuple[int, list[float]]:
    have = [rows[e][det] for e in entities if det in rows[e]]
    vals = [
        float(np.nanmean([m.get(k, np.nan) for m in have])) if have else np.nan for k in METRICS
    ]
    return len(have), vals


def table(doc: dict, dev_set: set[str], columns: tuple[str, ...]) -> list[str]:
    """Markdown lines: one row per detector, ``columns`` among dev, held, all."""
    rows = _rows(doc)
    groups = {
        "dev": [e for e in rows if e in dev_set],
        "held": [e for e in rows if e not in dev_set],
        "all": list(rows),
    }
    detectors = list(dict.fromkeys(d for r in rows.values() for d in r))
    stats = {d: {g: _means(rows, groups[g], d) for g in columns} for d in detectors}
    head = " | ".join(f"{g} {h}" for g in columns for h in HEAD)
    lines = [f"| detector | n ({'/'.join(columns)}) | {head} |",
             "|---|---|" + "---|" * (len(columns) * len(HEAD))]  # fmt: skip
    order = sorted(detectors, key=lambda d: -np.nan_to_num(stats[d][columns[0]][1][0], nan=-1))
    for d in order:
        counts = "/".join(str(stats[d][g][0]) for g in columns)
        vals = " | ".join(f"{v:.3f}" for g in columns for v in stats[d][g][1])
        lines.append(f"| {d} | {counts} | {vals} |")
    return lines


def per_entity(doc: dict, detectors: list[str], dev_set: set[str]) -> list[str]:
    """Markdown lines: VUS-PR / AUC-ROC of ``detectors`` per entity (dev entities marked), the
    best VUS-PR of the row in bold."""
    rows = _rows(doc)
    lines = [f"| entity | {' | '.join(detectors)} |", "|---|" + "---|" * len(detectors)]
    for entity, row in rows.items():
        vus = {d: row[d]["vus_pr"] for d in detectors if d in row}
        best = max(vus.values()) if vus else None
        cells = []
        for d in detectors:
            if d not in row:
                cells.append("-")
                continue
            text = f"{row[d]['vus_pr']:.3f} / {row[d]['auc_roc']:.3f}"
            cells.append(f"**{text}**" if vus[d] == best else text)
        name = f"{entity} (dev)" if entity in dev_set else entity
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="results.json of amad bench runs")
    parser.add_argument("--dev", required=True, help="comma list of dev entities")
    parser.add_argument("--columns", default="dev,held,all")
    parser.add_argument("--per-entity", default="", help="comma list: a per-entity table of these")
    args = parser.parse_args()
    for path in args.results:
        doc = json.loads(Path(path).read_text())
        print(f"\n{path}: {doc['spec']['dataset']}, profile {doc['spec']['profile']}")
        dev = set(args.dev.split(","))
        print("\n".join(table(doc, dev, tuple(args.columns.split(",")))))
        if args.per_entity:
            print("\n" + "\n".join(per_entity(doc, args.per_entity.split(","), dev)))


if __name__ == "__main__":
    main()
