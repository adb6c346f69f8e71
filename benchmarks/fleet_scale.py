"""Fleet scale: per-entity retrain wall time and peak memory, serial vs a two-worker Dask cluster.

    nice -n 10 .venv/bin/python benchmarks/fleet_scale.py [--entities 1,4,16,64] [--workers 2]
        [--modes serial,dask,dask-standing] [--out bench-out/fleet_scale.json]

One dataset of ``max(entities)`` synthetic entities (each its own system) is ingested once,
outside the timing. Then, for each fleet size n and each runner, the ``fleet-retrain`` flow
(``flows.pipeline.fleet_retrain``: per entity windows, a tiny model, champion/challenger against
PCA, publish) runs over the first n entities, in a fresh working folder and registry so nothing
is cached between runs:

- ``serial``: the default runner (Prefect's thread pool, ``fleet.threads: 1``): one entity at a
  time, torch using every core;
- ``dask``: ``fleet.runner: dask``, a ``distributed.LocalCluster`` of ``--workers`` one-thread
  worker processes on 127.0.0.1 (Dask sets one BLAS/torch thread per worker); its start-up is
  inside the measured time;
- ``dask-standing``: the same cluster started once, before any timing, with the project
  imported on its workers, and reached through ``fleet.dask_address``: what a production
  pipeline sees with a long-lived cluster (``infra/k8s/dask-cluster.yaml``). Each run's
  workers are moved to that run's folder first, so no window set is reused between runs.

Reported per run: wall time, seconds per entity, peak resident memory of this process and its
children (the workers; sampled every 0.25 s), and each mode's ratio to serial; then the
marginal cost per entity between consecutive sizes. A PNG of the curves goes next to the JSON
(``--out`` with ``.png``). Flows run on Prefect's ephemeral API under a temporary
``PREFECT_HOME``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Sample the resident memory of this process and all its children; ``peak_mb`` at exit.

    Every 0.5 s; the process tree is listed again only every 2 s (listing reads every
    ``/proc/<pid>/stat`` of the machine, which cost about 6 % of this process's CPU when done
    on every sample, CPU the runs being measured need).
    """
    import psutil

    me, out, stop = psutil.Process(), {"peak_mb": 0.0}, threading.Event()

    def sample() -> None:
        procs: list[psutil.Process] = []
        for tick in itertools.count():
            if stop.is_set():
                return
            if tick % 4 == 0:
                procs = [me, *me.children(recursive=True)]
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # a worker that just exited
                    continue
            out["peak_mb"] = max(out["peak_mb"], total / 2**20)
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()


def standing_cluster(workers: int) -> Any:
    """A ``LocalCluster`` started now, outside any timing, with the project imported on it."""
    from distributed import Client, LocalCluster

    from flows.runtime import _worker_env

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           env=_worker_env())  # fmt: skip
    with Client(cluster) as client:
        client.run(lambda: __import__("flows.pipeline") and None)
    return cluster


def run_once(mode: str, entities: list[str], version: str, base: dict[str, Any], work: Path,
             workers: int, cluster: Any = None) -> dict[str, Any]:  # fmt: skip
    """One ``fleet-retrain`` run over ``entities``; its wall time, peak memory, outcomes."""
    from amad.config import config_to_dict
    from flows.pipeline import fleet_retrain
    from flows.runtime import RunContext, load_run_config, task_runner

    work.mkdir(parents=True)
    os.chdir(work)  # window sets and bundles land here (and the cluster's workers start here)
    overrides = {**base, "publish.local_root": str(work / "registry"),
                 "fleet.runner": "default" if mode == "serial" else "dask",
                 "fleet.dask_workers": workers}  # fmt: skip
    if mode == "dask-standing":
        from distributed import Client

        with Client(cluster) as client:  # this run's folder, as a fresh worker would have
            client.run(os.chdir, str(work))
        overrides["fleet.dask_address"] = cluster.scheduler_address
    cfg = load_run_config(PARAMS, overrides)
    runner = task_runner(cfg)  # serial: the default runner, fleet.threads 1
    with peak_rss() as mem:
        t0 = time.perf_counter()
        context = RunContext(config_to_dict(cfg)).to_dict()  # resolved once, as the pipeline does
        out = fleet_retrain.with_options(task_runner=runner)(entities, version, context)
        wall = time.perf_counter() - t0
    return {"mode": mode, "entities": len(entities), "wall_s": round(wall, 1),
            "s_per_entity": round(wall / len(entities), 2), "peak_rss_mb": round(mem["peak_mb"]),
            "ok": len(out["entities"]), "failed": out["failed"],
            "workers": sorted({r["worker"] for r in out["entities"].values()})}  # fmt: skip


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Wall time and peak memory against fleet size, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=90)
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["entities"])
        sizes = [r["entities"] for r in mine]
        ax_t.plot(sizes, [r["wall_s"] for r in mine], marker="o", label=mode)
        ax_m.plot(sizes, [r["peak_rss_mb"] for r in mine], marker="o", label=mode)
    for ax, label in ((ax_t, "retrain wall time (s)"), (ax_m, "peak RSS, all processes (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("entities")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle("per-entity retrain of a fleet (tiny model, 2 cores)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def marginal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seconds per added entity between consecutive fleet sizes, per mode."""
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["entities"])
        for a, b in itertools.pairwise(mine):
            per = (b["wall_s"] - a["wall_s"]) / (b["entities"] - a["entities"])
            out.append({"mode": mode, "from": a["entities"], "to": b["entities"],
                        "s_per_added_entity": round(per, 2)})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", default="1,4,16,64")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="serial,dask,dask-standing")
    parser.add_argument("--out", default="bench-out/fleet_scale.json")
    args = parser.parse_args(argv)
    sizes, modes = [int(s) for s in args.entities.split(",")], args.modes.split(",")
    out_path = Path(args.out).resolve()
    root = Path(tempfile.mkdtemp(prefix="amad-fleet-scale-"))
    _prefect_env(root / "prefect")
    base, entities, version = build_dataset(root / "ws", max(sizes))
    # a throwaway run starts the ephemeral API, so its start-up is in neither measurement
    run_once("serial", entities[:1], version, base, root / "warmup", args.workers)
    cluster = standing_cluster(args.workers) if "dask-standing" in modes else None
    rows = []
    try:
        for n in sizes:
            for mode in modes:
                row = run_once(mode, entities[:n], version, base, root / f"{mode}-{n}",
                               args.workers, cluster)  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if cluster is not None:
            cluster.close()
    for row in rows:
        serial = next(r for r in rows if r["entities"] == row["entities"] and r["mode"] == "serial")
        row["ratio_to_serial"] = round(row["wall_s"] / serial["wall_s"], 2)
        print(f"{row['entities']:>4} entities {row['mode']:>13}: {row['wall_s']:>7.1f} s, "
              f"{row['peak_rss_mb']:>6} MiB, ratio {row['ratio_to_serial']:.2f}", flush=True)  # fmt: skip
    steps = marginal(rows)
    for step in steps:
        print(json.dumps(step), flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, "marginal": steps, "workers": args.workers, "load": os.getloadavg()}
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    plot(rows, out_path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
