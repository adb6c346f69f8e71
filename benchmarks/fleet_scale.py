"""Fleet scale: per-entity retrain wall time, serial vs a two-worker Dask cluster.

    nice -n 10 .venv/bin/python benchmarks/fleet_scale.py [--entities 1,4,16] [--workers 2]
        [--out bench-out/fleet_scale.json]

One dataset of ``max(entities)`` synthetic entities (each its own system) is ingested once,
outside the timing. Then, for each fleet size n and each runner, the ``fleet-retrain`` flow
(``flows.pipeline.fleet_retrain``: per entity windows, a tiny model, champion/challenger against
PCA, publish) runs over the first n entities, in a fresh working folder and registry so nothing
is cached between runs:

- ``serial``: the default runner (Prefect's thread pool, ``fleet.threads: 1``): one entity at a
  time, torch using every core;
- ``dask``: ``fleet.runner: dask``, a ``distributed.LocalCluster`` of ``--workers`` one-thread
  worker processes on 127.0.0.1 (Dask sets one BLAS/torch thread per worker); its start-up is
  inside the measured time.

Reported per run: wall time, seconds per entity, and the dask/serial ratio. Flows run on
Prefect's ephemeral API under a temporary ``PREFECT_HOME``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")


def _prefect_env(home: Path) -> None:
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL"] = "WARNING"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"] = "WARNING"
    os.environ.pop("PREFECT_API_URL", None)


def tiny(root: Path) -> dict[str, Any]:
    """The tiny model and data of the flow tests, with the dataset under ``root``."""
    sys.path.insert(0, str(REPO))
    from tests.flows.helpers import tiny_overrides

    return tiny_overrides(root)


def build_dataset(root: Path, n_entities: int) -> tuple[dict[str, Any], list[str], str]:
    """Ingest one batch per half of the training period, all entities in each."""
    from amad.telemetry import ingest
    from flows.demo_steps import write_fleet_batch
    from flows.runtime import load_run_config

    overrides = tiny(root)
    cfg = load_run_config(PARAMS, overrides)
    entities = [f"unit-{i:03d}" for i in range(n_entities)]
    n = cfg.data.synthetic.train_steps // 2
    for i in range(2):
        batch = write_fleet_batch(cfg, root / "in" / f"b{i}.csv", entities, start_step=i * n,
                                  n_steps=n, seed=i)  # fmt: skip
        ingest.ingest_batch(batch, cfg, push=False)
    version = ingest.data_version(cfg)
    assert version is not None
    return overrides, entities, version


def run_once(mode: str, entities: list[str], version: str, base: dict[str, Any], work: Path,
             workers: int) -> dict[str, Any]:  # fmt: skip
    """One ``fleet-retrain`` run over ``entities``; its wall time and outcome counts."""
    from flows.pipeline import fleet_retrain
    from flows.runtime import load_run_config, task_runner

    work.mkdir(parents=True)
    os.chdir(work)  # window sets and bundles land here (and the cluster's workers start here)
    overrides = {**base, "publish.local_root": str(work / "registry"),
                 "fleet.runner": "dask" if mode == "dask" else "default",
                 "fleet.dask_workers": workers}  # fmt: skip
    cfg = load_run_config(PARAMS, overrides)
    runner = task_runner(cfg)  # serial: the default runner, fleet.threads 1
    t0 = time.perf_counter()
    out = fleet_retrain.with_options(task_runner=runner)(entities, version, PARAMS, overrides)
    wall = time.perf_counter() - t0
    return {"mode": mode, "entities": len(entities), "wall_s": round(wall, 1),
            "s_per_entity": round(wall / len(entities), 2), "ok": len(out["entities"]),
            "failed": out["failed"],
            "workers": sorted({r["worker"] for r in out["entities"].values()})}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", default="1,4,16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench-out/fleet_scale.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.entities.split(",")]
    out_path = Path(args.out).resolve()
    root = Path(tempfile.mkdtemp(prefix="amad-fleet-scale-"))
    _prefect_env(root / "prefect")
    base, entities, version = build_dataset(root / "ws", max(sizes))
    # a throwaway run starts the ephemeral API, so its start-up is in neither measurement
    run_once("serial", entities[:1], version, base, root / "warmup", args.workers)
    rows = []
    for n in sizes:
        for mode in ("serial", "dask"):
            row = run_once(mode, entities[:n], version, base, root / f"{mode}-{n}", args.workers)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for n in sizes:
        serial, dask = (next(r for r in rows if r["entities"] == n and r["mode"] == m)
                        for m in ("serial", "dask"))  # fmt: skip
        print(
            f"{n:>4} entities: serial {serial['wall_s']:>7.1f} s, dask {dask['wall_s']:>7.1f} s,"
            f" ratio {dask['wall_s'] / serial['wall_s']:.2f}",
            flush=True,
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"rows": rows, "workers": args.workers}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
