"""``score``: batch-score new telemetry with the current champion; scores and alerts to storage.

The champion is fetched from the registry with its hashes verified, the library scores the batch
(per-step scores and alert flags, the bundle's own scaler and threshold), and the result files are
uploaded under ``output_uri/<model>/<champion version>/<batch name>/``. ``source`` may be one
file, a folder or an S3 prefix: batches this champion already scored are skipped, so the hourly
deployment can point at the incoming prefix. With no champion yet, or nothing left to score, the
run ends in a named Completed state ("NoChampion", "NothingToScore"), not a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run
from prefect.states import Completed

from amad import stages
from amad.storage.registry import Registry
from amad.storage.store import store_from_config, store_from_uri
from amad.telemetry import ingest
from flows.runtime import STORAGE_RETRIES, load_run_config, route_library_logs

NO_CHAMPION = "NoChampion"


@task(name="fetch-champion", **STORAGE_RETRIES)
def fetch_champion(
    dest: str, config_path: str | None, overrides: dict[str, Any] | None
) -> dict[str, str] | None:
    """The champion's version id and local bundle path (verified), or None without one."""
    cfg = load_run_config(config_path, overrides)
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name)
    pointer = registry.champion()
    if pointer is None:
        return None
    path = registry.fetch(pointer.version, Path(dest) / pointer.version)
    return {"version": pointer.version, "bundle_dir": str(path)}


@task(name="score-batch")
def score_batch(
    bundle_dir: str,
    source: str,
    out_dir: str,
    config_path: str | None,
    overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    """Score one batch with a bundle; returns local result files and alert counts."""
    cfg = load_run_config(config_path, overrides)
    return dict(stages.score_batch(cfg, bundle_dir, source, out_dir=out_dir))


@task(name="upload-scores", **STORAGE_RETRIES)
def upload_scores(files: list[str], output_uri: str, prefix: str) -> list[str]:
    """Upload result files under ``output_uri/prefix``; returns their URIs."""
    store = store_from_uri(output_uri)
    uris = []
    for name in files:
        key = f"{prefix}/{Path(name).name}"
        store.put_bytes(key, Path(name).read_bytes())
        uris.append(f"{output_uri.rstrip('/')}/{key}")
    return uris


@task(name="list-unscored", **STORAGE_RETRIES)
def list_unscored(source: str, output_uri: str, prefix: str) -> list[str]:
    """Batch files under ``source`` that this champion has not scored into ``output_uri``."""
    done = {
        key.split("/")[-2]
        for key in store_from_uri(output_uri).list(prefix)
        if key.endswith("/summary.json")
    }
    return [s.name for s in ingest.expand_sources([source]) if _stem(s.name) not in done]


def _stem(name: str) -> str:
    return Path(name.rstrip("/")).stem


@flow(name="score")
def score(
    source: str,
    output_uri: str = "runs/scores",
    work_dir: str = "runs/score",
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Score the batches in ``source`` (a file, folder or S3 prefix) not scored yet."""
    route_library_logs()
    cfg = load_run_config(config_path, overrides)
    run_dir = Path(work_dir) / str(flow_run.get_id() or "local")
    champion = fetch_champion(str(run_dir), config_path, overrides)
    if champion is None:
        return Completed(name=NO_CHAMPION, message="no champion to score with yet")
    prefix = f"{cfg.publish.model_name}/{champion['version']}"
    totals: dict[str, Any] = {"version": champion["version"], "rows": 0, "alerts": 0,
                              "outputs": [], "batches": []}  # fmt: skip
    for batch in list_unscored(source, output_uri, prefix):
        out_dir = str(run_dir / _stem(batch))
        result = score_batch(champion["bundle_dir"], batch, out_dir, config_path, overrides)
        uploaded = upload_scores(list(result["files"]), output_uri, f"{prefix}/{_stem(batch)}")
        totals["rows"] += result["rows"]
        totals["alerts"] += result["alerts"]
        totals["outputs"] += uploaded
        totals["batches"].append(_stem(batch))
    if not totals["batches"]:
        return Completed(name="NothingToScore", message=f"every batch in {source} is scored")
    totals["alert_rate"] = totals["alerts"] / max(totals["rows"], 1)
    return totals
