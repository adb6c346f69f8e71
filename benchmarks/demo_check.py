"""Does the embedded default detect? AMAD (params.yaml) against PCA on the synthetic test split.

The recipe of ``amad train --evaluate`` on ``params.yaml`` (optionally with ``--set`` overrides),
with the scaler and the threshold from the training period only, on one of two data layouts:

- ``recipe``: ``data.synthetic`` as ``amad train`` loads it (clean training period, then a test
  period with every anomaly kind), one run per ``--seeds`` value;
- ``demo``: the batches ``make demo`` writes for each fleet entity (``flows/demo_steps.py``,
  ``write_fleet``: entity i is synthetic system i; 3000 clean steps of seed 1 + 1000 i, then
  3000 of seed 3 + 1000 i and, for the third pipeline run, 3000 of seed 4 + 1000 i, both with
  every anomaly kind; e1 is the former single-entity demo's data), training on the first 70 %
  of the rows and evaluating on the last 30 %, as the pipeline does (``contract.eval_fraction``);
  ``run1`` and ``run3`` are the demo's two training runs, one pair per ``--entities`` value.

It reports VUS-PR and AUC-ROC of AMAD and of PCA (fitted and thresholded the same way as the
pipeline's PCA gate, ``amad.stages.evaluate_baseline``) on the evaluation part, and for every
injected event there whether AMAD's threshold flags at least one of its steps.

    .venv/bin/python benchmarks/demo_check.py [--config params.yaml] [--layout demo|recipe]
        [--entities e1,e2,e3] [--runs 1,3] [--seeds 0,1,2] [--set model.objective=forecast ...] [--spreads 0,1,1:2]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from amad.bench.detectors import PCADetector, fit_with_threshold
from amad.config import AmadConfig, load_config, parse_override
from amad.detector.scoring import score_series
from amad.detector.spread import with_spread
from amad.detector.thresholds import fit_threshold
from amad.detector.train import fit
from amad.evaluation.metrics import evaluate
from amad.series.data import SeriesData, make_series
from amad.series.synthetic import generate, synthetic_series_data
from amad.series.windows import build_windows
from flows.demo_steps import FLEET, fleet_batch_args

Events = list[tuple[str, int, int]]  # (kind, start, end) in test-split steps


def recipe_data(cfg: AmadConfig) -> tuple[SeriesData, Events]:
    """``data.synthetic`` as ``amad train`` loads it, and the test split's events."""
    syn = cfg.data.synthetic
    events = generate(syn, n_steps=syn.test_steps, start_step=syn.train_steps).events
    return synthetic_series_data(syn), [(e.kind, e.start, e.end) for e in events]


def demo_data(cfg: AmadConfig, run: int, entity: str = FLEET[0]) -> tuple[SeriesData, Events]:
    """One fleet entity's demo batches for pipeline run 1 or 3, split 70 / 30 in time like the
    pipeline (the seeds of ``flows.demo_steps.fleet_batch_args``)."""
    index, n = FLEET.index(entity), cfg.data.synthetic.train_steps // 2
    syn = cfg.data.synthetic.model_copy(update={"seed": index})
    plan = [(1, False), (3, True)] + ([(4, True)] if run == 3 else [])
    parts = [generate(syn, n_steps=n, seed=fleet_batch_args(index, k, i * n, n)["seed"],
                      start_step=i * n, anomalies=anomalies)
             for i, (k, anomalies) in enumerate(plan)]  # fmt: skip
    values = np.concatenate([p.values for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    cut = len(values) - round(cfg.contract.eval_fraction * len(values))
    events = [(e.kind, max(e.start + i * n - cut, 0), e.end + i * n - cut)
              for i, part in enumerate(parts) for e in part.events if e.end + i * n > cut]  # fmt: skip
    series = make_series("demo", f"{entity}-run{run}", values[:cut], values[cut:], labels[cut:])
    return series, events


def check(
    cfg: AmadConfig, series: SeriesData, events: Events, spreads: list[str] | None = None
) -> dict[str, Any]:
    """AMAD and PCA metrics on the test split, and which events AMAD's threshold flags; with
    ``spreads``, AMAD's once per ``model.spread`` weight, the same trained model rescored."""
    prepared = build_windows(series, cfg.windows)
    started, cpu = time.perf_counter(), time.process_time()
    result = fit(cfg.model, cfg.train, prepared.train_windows, prepared.val_windows,
                 progress=False)  # fmt: skip
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    labels = prepared.labels
    assert labels is not None
    pca = PCADetector()
    pca_fit = fit_with_threshold(pca, prepared.train_scaled, prepared.val_scaled,
                                 anomaly_ratio=cfg.score.anomaly_ratio)  # fmt: skip
    pca_m = evaluate(np.asarray(pca.score(prepared.test_scaled)), labels, pca_fit.threshold)
    out: dict[str, Any] = {
        "entity": series.entity, "train_s": round(seconds, 1),
        "train_cpu_s": round(cpu_seconds, 1), "epochs": len(result.history),
        "pca_vus_pr": pca_m["vus_pr"], "pca_auc_roc": pca_m["auc_roc"],
    }  # fmt: skip
    if not spreads:
        return {**out, **_amad_metrics(cfg, result.model, prepared, events)}
    for spec in spreads:  # "w" or "w:deadzone"; only the score reads them: no retraining
        weight, _, deadzone = spec.partition(":")
        model = with_spread(result.model, float(weight), float(deadzone or 0.0),
                            prepared.val_windows)  # fmt: skip
        out[f"spread={spec}"] = _amad_metrics(cfg, model, prepared, events)
    return out


def _amad_metrics(cfg: AmadConfig, model: Any, prepared: Any, events: Events) -> dict[str, Any]:
    kind, labels = cfg.score.kind, prepared.labels
    val = score_series(model, prepared.val_scaled, cfg.score, cfg.windows).of(kind)
    threshold = fit_threshold(val, cfg.score).value
    test = score_series(model, prepared.test_scaled, cfg.score, cfg.windows).of(kind)
    amad_m = evaluate(test, labels, threshold)
    flagged = {f"{k}@{a}": bool((test[a:b] > threshold).any()) for k, a, b in events}
    return {
        "amad_vus_pr": amad_m["vus_pr"], "amad_auc_roc": amad_m["auc_roc"],
        "amad_alert_rate": amad_m["alert_rate"], "events_flagged": sum(flagged.values()),
        "events": len(flagged), "flagged": flagged,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="params.yaml")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--entities", default=",".join(FLEET), help="demo layout: fleet entities")
    parser.add_argument("--layout", choices=["demo", "recipe"], default="demo")
    parser.add_argument("--runs", default="1,3", help="demo layout: pipeline runs (1 and/or 3)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument(
        "--spreads", default="", help="rescore with these model.spread[:spread_deadzone] values"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = dict(parse_override(o) for o in args.overrides)
    spreads = [w for w in args.spreads.split(",") if w]
    if spreads:  # the model needs the spread statistics to be rescored with any weight
        base["model.spread"] = 1.0
    if args.layout == "demo":
        cfg = load_config(args.config, base)
        for entity in args.entities.split(","):
            for run in (int(r) for r in args.runs.split(",")):
                print(json.dumps(check(cfg, *demo_data(cfg, run, entity), spreads)), flush=True)
        return
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = load_config(args.config, {**base, "data.synthetic.seed": seed})
        series, events = recipe_data(cfg)
        print(json.dumps({"seed": seed, **check(cfg, series, events, spreads)}), flush=True)


if __name__ == "__main__":
    main()
