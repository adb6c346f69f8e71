"""Score-variant sweep for AMAD on real entities (the evidence behind benchmarks/TUNING.md).

Per entity it follows ``amad bench``'s protocol exactly (``amad.bench.runner.prepare``: chronological
split of the training period, scaler fitted on the fitting part, test labels only for metrics),
fits PCA and the AE baseline, trains ONE AMAD model and derives every score variant from the same
per-window outputs, so the variants differ only in how the score is formed:

- ``rec``: squared error averaged over channels (what the bundle's ``reconstruction`` score is);
- ``nrec``: each channel's squared error divided by its mean on the held-out validation part;
- ``nrec_max``: the largest normalised channel error instead of the mean;
- ``nrec_f0.1`` / ``nrec_f0.5``: ``nrec`` with each channel scale floored at 0.1 / 0.5 x their mean;
- ``assoc_paper`` / ``assoc_flipped``: Anomaly Transformer's ``L * softmax_t(-/+ T dis) * rec``;
- ``nrec_dis+`` / ``nrec_dis-``: ``nrec * exp(+/- clip(z(dis), -3, 3))`` with z from validation;
- ``nrec_zpos+``: the same with ``dis`` z-scored per position in the window (validation mean and
  std of each position), which removes the window-edge structure; ``dis``, ``zpos`` alone.

Each at scoring strides 100 (non-overlapping), 50 and 10 (overlapping, per-step averages).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_scores.py --dataset smd \\
        --entities machine-1-2,machine-1-6 --out runs/tune/smd-base [--set model.d_model=128 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amad.bench.detectors import amad_config, entity_seed, fit_with_threshold, make_detector
from amad.bench.runner import DEFAULT_ANOMALY_RATIO, BenchSpec, data_config, prepare
from amad.config import parse_override
from amad.detector.thresholds import pot_threshold
from amad.detector.train import fit
from amad.evaluation import metrics
from amad.nn import losses
from amad.series.loaders import load_series
from amad.series.windows import fold_window_scores, sliding_windows, window_starts

log = logging.getLogger("tune")
STRIDES = (100, 50, 10)


@torch.inference_mode()
def window_outputs(model: torch.nn.Module, x: np.ndarray, length: int, stride: int):
    """Per-window channel errors (n, t, c), discrepancy (n, t) and starts (n,)."""
    windows = sliding_windows(x, length, stride)
    starts = window_starts(len(x), length, stride)
    err = np.empty(windows.shape, dtype=np.float32)
    dis = np.empty(windows.shape[:2], dtype=np.float32)
    for lo in range(0, len(windows), 256):
        batch = torch.from_numpy(np.array(windows[lo : lo + 256], dtype=np.float32))
        out = model(batch, latents=False)
        err[lo : lo + len(batch)] = (out.recon - batch).pow(2).numpy()
        dis[lo : lo + len(batch)] = losses.association_discrepancy(out.local, out.global_).numpy()
    return err, dis, starts


def subset(starts: np.ndarray, stride: int, n_steps: int, length: int) -> np.ndarray:
    """Indices of the stride-10 windows that a coarser stride would have produced."""
    want = set(window_starts(n_steps, length, stride).tolist())
    return np.array([i for i, s in enumerate(starts.tolist()) if s in want])


def softmax_weight(dis: np.ndarray, sign: float, temperature: float = 50.0) -> np.ndarray:
    logits = sign * temperature * dis
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return w * (dis.shape[-1] / w.sum(axis=-1, keepdims=True))


def variants(err, dis, starts, n_steps, calib, *, full: bool) -> dict[str, np.ndarray]:
    """Every score variant for one series from its window outputs."""
    fold = lambda w: fold_window_scores(w, starts, n_steps)  # noqa: E731
    rec_w = err.mean(-1)
    nerr = err / calib["scale"]
    out = {"rec": fold(rec_w), "nrec": fold(nerr.mean(-1)), "nrec_max": fold(nerr.max(-1))}
    for floor in (0.1, 0.5):  # channel scales floored at a fraction of their mean
        scale = np.maximum(calib["scale"], floor * calib["scale"].mean())
        out[f"nrec_f{floor:g}"] = fold((err / scale).mean(-1))
    if full:
        out["assoc_paper"] = fold(softmax_weight(dis, -1.0) * rec_w)
        out["assoc_flipped"] = fold(softmax_weight(dis, 1.0) * rec_w)
        z = np.clip((fold(dis) - calib["dis_mean"]) / calib["dis_std"], -3, 3)
        out["nrec_dis+"] = out["nrec"] * np.exp(z)
        for clip in (0.5, 1.0, 2.0):  # smaller clips: less weight on the discrepancy
            out[f"nrec_dis+c{clip:g}"] = out["nrec"] * np.exp(np.clip(z, -clip, clip))
        out["nrec_dis-"] = out["nrec"] * np.exp(-z)
        out["dis"] = fold(dis)
        zpos = (dis - calib["pos_mean"]) / calib["pos_std"]  # per position in the window
        out["nrec_zpos+"] = out["nrec"] * np.exp(np.clip(fold(zpos), -3, 3))
        out["zpos"] = fold(zpos)
    return out


def amad_scores(cfg, data, seed: int) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Train one model; {variant@stride: (val scores, test scores)} and training info."""
    w = cfg.windows
    started = time.perf_counter()
    result = fit(cfg.model, cfg.train, sliding_windows(data.fit, w.length, w.train_stride),
                 sliding_windows(data.val, w.length, w.train_stride), progress=False)  # fmt: skip
    info = {"fit_s": time.perf_counter() - started, "best_epoch": result.best_epoch,
            "val_rec": result.history[result.best_epoch]["val_rec"]}  # fmt: skip
    model = result.model.cpu()
    v_err, v_dis, v_starts = window_outputs(model, data.val, w.length, 10)
    t_err, t_dis, t_starts = window_outputs(model, data.test, w.length, 10)
    out: dict[str, dict[str, np.ndarray]] = {}
    for stride in STRIDES:
        vi = subset(v_starts, stride, len(data.val), w.length)
        ti = subset(t_starts, stride, len(data.test), w.length)
        # channel scale: per-channel mean squared error over validation windows
        scale = v_err[vi].mean(axis=(0, 1)) + 1e-8
        vd = fold_window_scores(v_dis[vi], v_starts[vi], len(data.val))
        calib = {"scale": scale, "dis_mean": vd.mean(), "dis_std": vd.std() + 1e-12,
                 "pos_mean": v_dis[vi].mean(0), "pos_std": v_dis[vi].std(0) + 1e-12}  # fmt: skip
        full = True
        vs = variants(v_err[vi], v_dis[vi], v_starts[vi], len(data.val), calib, full=full)
        ts = variants(t_err[ti], t_dis[ti], t_starts[ti], len(data.test), calib, full=full)
        for name in ts:
            out[f"{name}@{stride}"] = {"val": vs[name], "test": ts[name]}
    info["score_s"] = time.perf_counter() - started - info["fit_s"]
    return out, info


def evaluate(val: np.ndarray, test: np.ndarray, labels: np.ndarray, ratio: float) -> dict:
    thr = float(np.percentile(val, 100 - ratio))
    m = metrics.evaluate(test, labels, thr)
    keep = (
        "vus_pr",
        "auc_pr",
        "auc_roc",
        "vus_roc",
        "best_f1",
        "affiliation_f1",
        "alert_rate",
        "f1",
    )
    out = {k: float(m[k]) for k in keep if k in m}
    pot, _ = pot_threshold(val, init_quantile=0.98, risk=1e-3)  # ScoreConfig's POT defaults
    tm = metrics.threshold_metrics(test, labels, pot)
    out.update({f"pot_{k}": float(tm[k]) for k in ("alert_rate", "f1", "affiliation_f1")})
    return out


def run_entity(args, entity: str, overrides: dict[str, Any]) -> dict[str, Any]:
    spec = BenchSpec(dataset=args.dataset, out=Path(args.out), root=args.root)
    data = prepare(load_series(data_config(spec, entity)), 0.2)
    ratio = DEFAULT_ANOMALY_RATIO.get(args.dataset, 1.0)
    seed = entity_seed(0, entity)
    row: dict[str, Any] = {}
    for name in args.baselines:
        det = make_detector(name, seed=seed)
        fitted = fit_with_threshold(det, data.fit, data.val, anomaly_ratio=ratio)
        row[name] = evaluate(fitted.val_scores, det.score(data.test), data.labels, ratio)
    cfg = amad_config("amad", "cpu", {"train.seed": seed, **overrides})
    scores, info = amad_scores(cfg, data, seed)
    for name, s in scores.items():
        row[f"amad:{name}"] = evaluate(s["val"], s["test"], data.labels, ratio)
    row["_info"] = info
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", default=None)
    parser.add_argument("--entities", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--baselines", default="pca,ae")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    args.baselines = [b for b in args.baselines.split(",") if b]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    overrides = dict(parse_override(s) for s in args.sets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tune.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"overrides": overrides, "rows": {}}
    for entity in args.entities.split(","):
        if entity in doc["rows"]:
            continue
        started = time.perf_counter()
        doc["rows"][entity] = run_entity(args, entity, overrides)
        path.write_text(json.dumps(doc, indent=1))
        r = doc["rows"][entity]
        log.info("%s done in %.0fs: pca %.3f ae %.3f rec@50 %.3f nrec@50 %.3f", entity,
                 time.perf_counter() - started, r.get("pca", {}).get("vus_pr", np.nan),
                 r.get("ae", {}).get("vus_pr", np.nan), r["amad:rec@50"]["vus_pr"],
                 r["amad:nrec@50"]["vus_pr"])  # fmt: skip


if __name__ == "__main__":
    main()
