"""Scoring at cadence: one hourly batch (60 rows per entity) of a fleet, each entity after its
kept context, through ``amad.detector.cadence.score_batch_by_entity`` (what the score flow calls).

    nice -n 10 .venv/bin/python benchmarks/score_cadence.py [--entities 1000] [--rows 60]

One tiny bundle is trained once (``amad train`` with the flow tests' tiny model) and every entity
is given it as its champion (each entity still loads and verifies its bundle, as in production).
A first batch is scored to build every entity's context; the second, timed batch is scored after
it. Reported: rows, entities, wall time, rows/s. Goal of issue 10: 1,000 entities x 60 rows in
under 60 s on 2 cores. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=60)
    args = parser.parse_args(argv)
    from amad.detector.cadence import score_batch_by_entity
    from amad.storage.store import LocalStore
    from flows.demo_steps import write_fleet_batch
    from flows.runtime import load_run_config

    root = Path(tempfile.mkdtemp(prefix="amad-score-cadence-"))
    cfg = load_run_config(str(PARAMS), TINY)
    bundle = train_bundle(root / "bundle")
    entities = [f"unit-{i:04d}" for i in range(args.entities)]
    bundles = dict.fromkeys(entities, str(bundle))
    store = LocalStore(root / "scores")
    timings = []
    for hour in range(2):
        batch = write_fleet_batch(cfg, root / f"h{hour}.csv", entities,
                                  start_step=hour * args.rows, n_steps=args.rows, seed=hour)  # fmt: skip
        t0 = time.perf_counter()
        out = score_batch_by_entity(cfg, bundles, str(batch), context_store=store,
                                    out_dir=root / f"out{hour}")  # fmt: skip
        timings.append({"hour": hour, "rows": out["rows"], "unscored": len(out["unscored"]),
                        "wall_s": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(json.dumps(timings[-1]), flush=True)
    timed = timings[-1]
    print(f"{args.entities} entities x {args.rows} rows: {timed['wall_s']} s, "
          f"{timed['rows'] / timed['wall_s']:.0f} rows/s (after context from hour 0)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
