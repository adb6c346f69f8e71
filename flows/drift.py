"""Drift acts: each new drift finding becomes one Prefect event ``amad.drift.detected``.

Findings come from the library (``amad.evaluation.drift``: a batch's failed ``drift_mean`` /
``drift_std`` checks against the dataset's reference statistics, or a model's score PSI on the
recent window). ``log-drift`` writes each to the drift log on the publish store
(``amad.storage.drift_log``, create-only), so the same batch validated again, or a retried task,
announces nothing new; ``announce-drift`` emits one event per new finding:

- resource ``amad.model.<model name>`` (what a retrain renews), with the labels ``amad.subject``
  (the metric, or ``score``), ``amad.batch`` and ``amad.retrain-follows``; the batch's entities
  as related resources (role ``entity``);
- payload: the finding (subject, statistic, size: z / std ratio / PSI, threshold, batch, data
  version, entities, model version, every failed check) plus ``model`` and ``retrain_follows``;
- a deterministic event id (uuid5 of model and finding key).

``retrain_follows`` is true when the run that found the drift is the ``pipeline`` itself, which
goes on to retrain on that data: the retrain automation (``flows.notify_setup``) matches only
``amad.retrain-follows: false``, so the pipeline's own drift never queues a second retrain of
the same data.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from prefect import get_run_logger, task
from prefect.events import emit_event

from amad.storage.drift_log import open_drift
from amad.storage.store import store_from_config
from flows.runtime import STORAGE_RETRIES, run_config

EVENT = "amad.drift.detected"
RETRAIN_FOLLOWS = "amad.retrain-follows"
_NAMESPACE = uuid.UUID("6f0c2a4e-1d7b-4c55-9a41-5b0d2f8e7c13")


def event_id(model_name: str, key: str) -> uuid.UUID:
    """The event id of one finding: the same finding is the same event."""
    return uuid.uuid5(_NAMESPACE, f"{model_name}/{key}")


@task(name="log-drift", **STORAGE_RETRIES)
def log_drift(findings: list[dict[str, Any]], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Write the findings to the drift log; returns the new ones."""
    cfg = run_config(context)
    return open_drift(store_from_config(cfg.publish), cfg.publish.model_name, findings)


def emit_drift(finding: dict[str, Any], model_name: str, retrain_follows: bool) -> None:
    """The ``amad.drift.detected`` event of one finding (``DriftFinding.to_dict()``)."""
    subject = str(finding["subject"])
    emit_event(
        event=EVENT,
        resource={
            "prefect.resource.id": f"amad.model.{model_name}",
            "prefect.resource.name": f"drift of {subject} ({finding['statistic']} "
            f"{finding['size']:.4g}, threshold {finding['threshold']:.4g})",
            "amad.subject": subject,
            "amad.batch": str(finding["batch"]),
            RETRAIN_FOLLOWS: "true" if retrain_follows else "false",
        },
        related=[
            {"prefect.resource.id": f"amad.entity.{e}", "prefect.resource.role": "entity"}
            for e in finding.get("entities", [])
        ],
        payload={**finding, "model": model_name, "retrain_follows": retrain_follows},
        id=event_id(model_name, str(finding["key"])),
    )


@task(name="announce-drift")
def announce_drift(new: list[dict[str, Any]], model_name: str, retrain_follows: bool) -> int:
    """One ``amad.drift.detected`` event per new finding; returns how many were emitted."""
    for finding in new:
        emit_drift(finding, model_name, retrain_follows)
    if new:
        counts = Counter(str(f["subject"]) for f in new)  # one finding per metric per batch
        subjects = ", ".join(f"{s} (x{n})" if n > 1 else s for s, n in sorted(counts.items()))
        get_run_logger().warning("drift detected (%d findings): %s", len(new), subjects)
    return len(new)


def act_on_drift(
    findings: list[dict[str, Any]], context: dict[str, Any], retrain_follows: bool
) -> int:
    """Log the findings, announce the new ones (call inside a flow); how many were new."""
    if not findings:
        return 0
    new = log_drift(findings, context)
    model_name = run_config(context).publish.model_name
    return announce_drift(new, model_name, retrain_follows) if new else 0
