"""Fleet scale: per-entity retrain wall time and peak memory, serial vs a two-worker Dask cluster.

    nice -n 10 .venv/bin/python benchmarks/fleet_scale.py [--entities 1,4,16,64] [--workers 2]
        [--modes serial,dask,dask-standing] [--epochs 1] [--out bench-out/fleet_scale.json]

One dataset of ``max(entities)`` synthetic entities (each its own system) is ingested once,
outside the timing. Then, for each fleet size n and each runner, the ``fleet-retrain`` flow
(``flows.pipeline.fleet_retrain``: per entity windows, a tiny model, champion/challenger against
PCA, publish) runs over the first n entities, in a fresh working folder and registry so nothing
is cached between runs:

``--epochs`` (default 1, the tiny model's) sets ``train.epochs``: more epochs give each entity
more compute against the same orchestration, to see where the cluster starts to pay.

- ``serial``: the default runner (Prefect's thread pool, ``fleet.threads: 1``): one entity at a
  time, torch using every core;
- ``dask``: ``fleet.runner: dask``, a ``distributed.LocalCluster`` of ``--workers`` one-thread
  worker processes on 127.0.0.1 (Dask sets one BLAS/torch thread per worker); its start-up is
  inside the measured time;
- ``dask-standing``: the same cluster started once, before any timing, with the project
  imported on its workers, and reached through ``fleet.dask_address``: what a production
  pipeline sees with a long-lived cluster (``infra/k8s/dask-cluster.yaml``). Each run's
  workers are moved to that run's folder first, so no window set is reused between runs. One
  throwaway run over ``2 x --workers`` entities warms it first (a long-lived cluster has run
  before: torch's and matplotlib's lazy imports are done), as the throwaway one-entity serial
  run warms this process.

Reported per run: wall time, seconds per entity, peak resident memory of this process and its
children (the workers; sampled every 0.5 s), the CPU seconds spent by this process, by
Prefect's API server and by the workers (``cpu_s``), and each mode's ratio to serial; then the
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


def _role(proc: Any, me: Any) -> str:
    """``main`` (this process), ``api`` (Prefect's server), or ``workers`` (everything else)."""
    if proc.pid == me.pid:
        return "main"
    try:
        return "api" if any("uvicorn" in part for part in proc.cmdline()) else "workers"
    except Exception:  # gone, or not ours to read
        return "workers"


@contextmanager
def resources() -> Iterator[dict[str, Any]]:
    """Peak resident memory of this process and its children (``peak_mb``), and the CPU seconds
    each role spent inside the block (``cpu_s``: ``main``, ``api``, ``workers``).

    Every 0.5 s; the process tree is listed again only every 2 s (listing reads every
    ``/proc/<pid>/stat`` of the machine, which cost about 6 % of this process's CPU when done
    on every sample, CPU the runs being measured need). A process's CPU counts from its first
    sample (from the start for those already running), up to its last: a worker that exits
    between samples loses at most its last 0.5 s.
    """
    import psutil

    me, out, stop = psutil.Process(), {"peak_mb": 0.0, "cpu_s": {}}, threading.Event()
    first: dict[int, tuple[str, float]] = {}
    last: dict[int, float] = {}

    def cpu(proc: Any) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def sample() -> None:
        procs: list[Any] = []
        for tick in itertools.count():
            if tick % 4 == 0:
                procs = [me, *me.children(recursive=True)]
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                    last[proc.pid] = cpu(proc)
                    if proc.pid not in first:
                        first[proc.pid] = (_role(proc, me), last[proc.pid] if tick == 0 else 0.0)
                except psutil.Error:  # a worker that just exited
                    continue
            out["peak_mb"] = max(out["peak_mb"], total / 2**20)
            if stop.is_set():
                return
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        spent: dict[str, float] = {"main": 0.0, "api": 0.0, "workers": 0.0}
        for pid, (role, start) in first.items():
            spent[role] += last.get(pid, start) - start
        out["cpu_s"] = {role: round(s, 1) for role, s in spent.items()}


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
    with resources() as mem:
        t0 = time.perf_counter()
        context = RunContext(config_to_dict(cfg)).to_dict()  # resolved once, as the pipeline does
        out = fleet_retrain.with_options(task_runner=runner)(entities, version, context)
        wall = time.perf_counter() - t0
    return {"mode": mode, "entities": len(entities), "wall_s": round(wall, 1),
            "s_per_entity": round(wall / len(entities), 2), "peak_rss_mb": round(mem["peak_mb"]),
            "cpu_s": mem["cpu_s"],
            "ok": len(out["entities"]), "failed": out["failed"],
            "workers": sorted({r["worker"] for r in out["entities"].values()})}  # fmt: skip


def plot(rows: list[dict[str, Any]], path: Path, epochs: int = 1) -> None:
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
    fig.suptitle(f"per-entity retrain of a fleet (tiny model, {epochs} epoch(s), 2 cores)",
                 fontsize=10)  # fmt: skip
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
    parser.add_argument("--epochs", type=int, default=1, help="train.epochs per entity")
    parser.add_argument("--out", default="bench-out/fleet_scale.json")
    args = parser.parse_args(argv)
    sizes, modes = [int(s) for s in args.entities.split(",")], args.modes.split(",")
    out_path = Path(args.out).resolve()
    root = Path(tempfile.mkdtemp(prefix="amad-fleet-scale-"))
    _prefect_env(root / "prefect")
    base, entities, version = build_dataset(root / "ws", max(sizes))
    base = {**base, "train.epochs": args.epochs}
    # a throwaway run starts the ephemeral API, so its start-up is in neither measurement
    run_once("serial", entities[:1], version, base, root / "warmup", args.workers)
    cluster = standing_cluster(args.workers) if "dask-standing" in modes else None
    if cluster is not None:  # a long-lived cluster has run before: its lazy imports are done
        run_once("dask-standing", entities[: 2 * args.workers], version, base,
                 root / "warmup-standing", args.workers, cluster)  # fmt: skip
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
    doc = {"rows": rows, "marginal": steps, "workers": args.workers, "epochs": args.epochs,
           "load": os.getloadavg()}  # fmt: skip
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    plot(rows, out_path.with_suffix(".png"), args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
