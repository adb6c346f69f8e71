"""``score``: batch-score new telemetry, each entity with its own champion; scores to storage.

The champion is fetched from the registry with its hashes verified, the library scores the batch
(per-step scores and alert flags, the bundle's own scaler and threshold), and the result files are
uploaded under ``output_uri/<model>/<champion version>/<batch name>/``. ``source`` may be one
file, a folder or an S3 prefix: batches this champion already scored are skipped, so the hourly
deployment can point at the incoming prefix. With no champion yet, or nothing left to score, the
run ends in a named Completed state ("NoChampion", "NothingToScore"), not a failure. Each scored
batch's flags become alerts through the ``alerts`` subflow (``flows.alerts``: stored under
``output_uri/alerts/``, an ``amad.alert.opened`` event and a notification per new alert).

Champions are kept under ``work_dir/bundles/`` across runs (``amad.storage.bundle_cache``): a
copy is reused only while every file matches the registry's record of that version, so an hourly
run downloads only the champions that changed.

Per entity (``model.scope: entity``): each entity's rows are scored by that entity's champion
(``models/<name>/entities/<entity>/``), after the last ``windows.length - 1`` rows kept from its
previous batch (``amad.detector.cadence``, kept in ``output_uri`` under ``context/``), so an
hourly batch of 60 rows, or a single row, is scored with full context; ``fleet.threads``
entities are scored at once. Results go under
``output_uri/<model>/fleet-<champions id>/<batch name>/``; entities with no champion, or still
warming up, are listed under ``unscored``. Without any entity champion the model-wide champion
scores every entity as before.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run
from prefect.states import Completed

from amad import stages
from amad.detector import cadence
from amad.storage import bundle_cache
from amad.storage.bundle_cache import fetch_cached
from amad.storage.registry import Registry
from amad.storage.store import store_from_config, store_from_uri
from amad.telemetry import ingest
from flows.alerts import raise_alerts
from flows.runtime import (
    STORAGE_RETRIES,
    nested_runs,
    route_library_logs,
    run_config,
    run_context,
)

NO_CHAMPION = "NoChampion"


@task(name="fetch-champion", **STORAGE_RETRIES)
def fetch_champion(dest: str, context: dict[str, Any]) -> dict[str, str] | None:
    """The champion's version id and local bundle path (verified; cached), or None without one."""
    cfg = run_config(context)
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name)
    pointer = registry.champion()
    if pointer is None:
        return None
    path = fetch_cached(registry, pointer.version, Path(dest) / pointer.version)
    return {"version": pointer.version, "bundle_dir": str(path)}


@task(name="fetch-entity-champions", **STORAGE_RETRIES)
def fetch_entity_champions(dest: str, context: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every entity's champion (version id and verified local bundle, cached); {} without any."""
    cfg = run_config(context)
    return bundle_cache.fetch_entity_champions(
        store_from_config(cfg.publish), cfg.publish.model_name, dest
    )


@task(name="score-fleet-batch")  # not retried: a retry would see its own context
def score_fleet_batch(
    bundles: dict[str, str],
    source: str,
    output_uri: str,
    out_dir: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    """Score one batch, each entity with its champion after its kept context rows."""
    return cadence.score_batch_by_entity(
        run_config(context),
        bundles,
        source,
        context_store=store_from_uri(output_uri),
        out_dir=out_dir,
    )


def _champions_id(champions: dict[str, dict[str, str]]) -> str:
    """One id for a set of entity champions: a new champion anywhere rescores a batch."""
    text = ",".join(f"{e}={c['version']}" for e, c in sorted(champions.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@task(name="score-batch")
def score_batch(
    bundle_dir: str, source: str, out_dir: str, context: dict[str, Any]
) -> dict[str, Any]:
    """Score one batch with a bundle; returns local result files and alert counts."""
    return dict(stages.score_batch(run_config(context), bundle_dir, source, out_dir=out_dir))


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
    context: dict[str, Any] | None = None,
) -> Any:
    """Score the batches in ``source`` (a file, folder or S3 prefix) not scored yet.

    ``context``: the parent run's (``RunContext.to_dict()``); without it the config is resolved
    once from ``config_path`` and ``overrides``.
    """
    route_library_logs()
    with nested_runs():  # raise-alerts per batch
        mine = run_context(config_path, overrides, context).to_dict()
        run_dir = Path(work_dir) / str(flow_run.get_id() or "local")
        cache = str(Path(work_dir) / "bundles")  # kept across runs: only new champions are fetched
        champions = fetch_entity_champions(cache, mine)
        if champions:
            return _score_fleet(champions, source, output_uri, run_dir, mine)
        champion = fetch_champion(cache, mine)
        if champion is None:
            return Completed(name=NO_CHAMPION, message="no champion to score with yet")
        prefix = f"{run_config(mine).publish.model_name}/{champion['version']}"
        totals: dict[str, Any] = {"version": champion["version"], "rows": 0, "alerts": 0,
                                  "outputs": [], "batches": [], "entities": {}}  # fmt: skip
        for batch in list_unscored(source, output_uri, prefix):
            out_dir = str(run_dir / _stem(batch))
            result = score_batch(champion["bundle_dir"], batch, out_dir, mine)
            uploaded = upload_scores(list(result["files"]), output_uri, f"{prefix}/{_stem(batch)}")
            raised = raise_alerts({"*": champion}, batch, result["files"][0], out_dir, output_uri,
                                  context=mine)  # fmt: skip
            _add(totals, result, raised)
            totals["outputs"] += uploaded
            totals["batches"].append(_stem(batch))
        if not totals["batches"]:
            return Completed(name="NothingToScore", message=f"every batch in {source} is scored")
        totals["alert_rate"] = totals["alerts"] / max(totals["rows"], 1)
        return totals


def _add(totals: dict[str, Any], result: dict[str, Any], raised: dict[str, Any]) -> None:
    """Add one scored batch to the run's totals: rows, flagged steps, alerts per entity."""
    totals["rows"] += result["rows"]
    totals["alerts"] += result["alerts"]  # flagged steps
    totals["alerts_opened"] = totals.get("alerts_opened", 0) + raised["new"]
    totals["notified"] = totals.get("notified", 0) + raised["notified"]
    per_entity = totals["entities"]
    for entity, rec in (result.get("entities") or {}).items():
        mine = per_entity.setdefault(entity, {"rows": 0, "flagged": 0, "alerts": 0, "new": 0})
        mine["rows"] += rec["rows"]
        mine["flagged"] += rec["alerts"]
    for entity, counts in (raised.get("by_entity") or {}).items():
        mine = per_entity.setdefault(entity, {"rows": 0, "flagged": 0, "alerts": 0, "new": 0})
        mine["alerts"] += counts["alerts"]
        mine["new"] += counts["new"]


def _score_fleet(
    champions: dict[str, dict[str, str]],
    source: str,
    output_uri: str,
    run_dir: Path,
    context: dict[str, Any],
) -> Any:
    """The per-entity path of ``score``: every unscored batch, each entity by its champion."""
    prefix = f"{run_config(context).publish.model_name}/fleet-{_champions_id(champions)}"
    bundles = {e: c["bundle_dir"] for e, c in champions.items()}
    totals: dict[str, Any] = {"versions": {e: c["version"] for e, c in champions.items()},
                              "rows": 0, "alerts": 0, "outputs": [], "batches": [],
                              "unscored": {}, "entities": {}}  # fmt: skip
    for batch in list_unscored(source, output_uri, prefix):
        out_dir = str(run_dir / _stem(batch))
        result = score_fleet_batch(bundles, batch, output_uri, out_dir, context)
        totals["outputs"] += upload_scores(list(result["files"]), output_uri,
                                           f"{prefix}/{_stem(batch)}")  # fmt: skip
        raised = raise_alerts(champions, batch, result["files"][0], out_dir, output_uri,
                              context=context)  # fmt: skip
        _add(totals, result, raised)
        totals["batches"].append(_stem(batch))
        totals["unscored"][_stem(batch)] = result["unscored"]
    if not totals["batches"]:
        return Completed(name="NothingToScore", message=f"every batch in {source} is scored")
    totals["alert_rate"] = totals["alerts"] / max(totals["rows"], 1)
    return totals
