"""Scoring at cadence: one hourly batch (60 rows per entity) of a fleet, each entity after its
kept context, through ``amad.detector.cadence.score_batch_by_entity`` (what the score flow calls).

    nice -n 10 .venv/bin/python benchmarks/score_cadence.py [--entities 1000] [--rows 60]
        [--workers 1]

One tiny bundle is trained once (``amad train`` with the flow tests' tiny model); every entity
then gets its **own** bundle folder, written with ``save_bundle`` from it with that entity's id in
``data.entity`` and its own threshold (the trained one x (0.9 + 0.2 i / n)), so nothing can be
shared between entities by path, content or config, as in a fleet of per-entity champions. Each
entity loads and verifies its bundle, as in production. A first batch is scored to build every
entity's context; the second, timed batch is scored after it. Reported: rows, wall time, rows/s,
the process's CPU seconds (with one worker about the wall time on an idle core; on a shared
machine the wall time also measures the other load), seconds per stage (summed over entities:
context read, bundle load + verify, score, context write; batch read and output write once) and
the 1-minute load average before and after. Goal of issue 10: 1,000 entities x 60 rows in under 60 s on 2 cores. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
TINY = {"data.synthetic.train_steps": 1200, "windows.length": 32, "windows.score_stride": 16,
        "windows.train_stride": 4, "model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1,
        "model.d_ff": 16, "train.epochs": 1, "train.max_windows_per_epoch": 64}  # fmt: skip


def train_bundle(out: Path) -> Path:
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    cmd = [str(REPO / ".venv" / "bin" / "amad"), "train", "--config", str(PARAMS), "--out",
           str(out), "--no-evaluate", "--no-progress", *sets]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def entity_bundles(trained: Path, root: Path, entities: list[str]) -> dict[str, str]:
    """One bundle folder per entity, each with its own threshold and ``data.entity``."""
    from amad.detector.bundle import load_bundle, save_bundle

    base = load_bundle(trained)
    out = {}
    for i, entity in enumerate(entities):
        if (root / entity / "manifest.json").is_file():  # made by an earlier run (--root)
            out[entity] = str(root / entity)
            continue
        data = base.config.data.model_copy(update={"entity": entity})
        threshold = dataclasses.replace(
            base.threshold, value=base.threshold.value * (0.9 + 0.2 * i / len(entities))
        )
        path = save_bundle(root / entity, model=base.model,
                           config=base.config.model_copy(update={"data": data}),
                           scaler=base.scaler, threshold=threshold, history=base.history,
                           data_fingerprint=str(base.manifest["data_fingerprint"]),
                           extra_metrics=base.metrics, channels=base.channels)  # fmt: skip
        out[entity] = str(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="entities scored at once")
    parser.add_argument("--root", type=Path, default=None,
                        help="work folder; bundles already made there are reused")  # fmt: skip
    args = parser.parse_args(argv)
    from amad.detector.cadence import score_batch_by_entity
    from amad.storage.store import LocalStore
    from flows.demo_steps import write_fleet_batch
    from flows.runtime import load_run_config

    root = args.root or Path(tempfile.mkdtemp(prefix="amad-score-cadence-"))
    cfg = load_run_config(str(PARAMS), TINY)
    entities = [f"unit-{i:04d}" for i in range(args.entities)]
    t0 = time.perf_counter()
    trained = root / "bundle"
    bundles = entity_bundles(trained if trained.is_dir() else train_bundle(trained),
                             root / "bundles", entities)  # fmt: skip
    print(json.dumps({"setup_s": round(time.perf_counter() - t0, 1), "root": str(root)}),
          flush=True)  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="run-", dir=root))  # contexts and outputs: fresh
    store = LocalStore(root / "scores")
    extra = {"workers": args.workers} if args.workers != 1 else {}  # the old API had no workers
    timings = []
    for hour in range(2):
        batch = write_fleet_batch(cfg, root / f"h{hour}.csv", entities,
                                  start_step=hour * args.rows, n_steps=args.rows, seed=hour)  # fmt: skip
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        out = score_batch_by_entity(cfg, bundles, str(batch), context_store=store,
                                    out_dir=root / f"out{hour}", **extra)  # fmt: skip
        timings.append({"hour": hour, "rows": out["rows"], "unscored": len(out["unscored"]),
                        "wall_s": round(time.perf_counter() - t0, 1),
                        "cpu_s": round(time.process_time() - c0, 1),
                        "stage_s": out.get("stage_s"),
                        "load1": [round(load, 2), round(os.getloadavg()[0], 2)]})  # fmt: skip
        print(json.dumps(timings[-1]), flush=True)
    timed = timings[-1]
    print(f"{args.entities} entities x {args.rows} rows, workers {args.workers}: "
          f"{timed['wall_s']} s ({timed['cpu_s']} s CPU), "
          f"{timed['rows'] / timed['wall_s']:.0f} rows/s "
          f"(after context from hour 0; load average {timed['load1']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
