"""``alerts``: a scored batch's flags become alerts, stored once, announced once, to a person.

Steps (each a task around one library call):

1. ``find-alerts``: ``amad.detector.alerting.batch_alerts`` merges flagged steps into alerts with
   the top channels by normalised error, and writes ``alerts.json`` next to the scores;
2. ``open-alerts``: ``amad.storage.alert_log.open_alerts`` writes each alert under
   ``<output_uri>/alerts/<model>/<entity>/<alert id>.json`` create-only; the alerts it could
   create are the *new* ones (the same batch scored again yields the same ids, so none are new);
3. ``announce-alerts``: one Prefect event ``amad.alert.opened`` per new alert, resource
   ``amad.alert.<id>`` with the entity as a related resource, the alert as payload (an
   automation on the server can match on it);
4. ``notify-alerts``: with ``alerts.notify_block`` set (``<block type slug>/<name>``, e.g.
   ``custom-webhook/amad-alerts``), one message per new alert through that saved Prefect
   notification block (a custom webhook, Slack, e-mail via apprise, ...).

Notification is at most once: an alert is logged before it is announced, so a run that fails
after step 2 does not notify that alert again on retry. A table artifact ``alerts`` lists the
batch's alerts and whether each was new; ``worst-alert`` plots the scores of the entity with the
highest-peak alert against its threshold.

The config is resolved once per run: the ``score`` flow passes its ``RunContext`` down as
``context``; started on its own, the flow resolves ``config_path`` + ``overrides`` once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.blocks.core import Block
from prefect.blocks.notifications import NotificationBlock
from prefect.events import emit_event

from amad.detector.alerting import batch_alerts
from amad.evaluation.alerts import Alert, alert_table
from amad.storage.alert_log import open_alerts
from amad.storage.store import store_from_uri
from flows import reports
from flows.runtime import STORAGE_RETRIES, route_library_logs, run_config, run_context

EVENT = "amad.alert.opened"


@task(name="find-alerts")
def find_alerts(
    champions: dict[str, dict[str, str]],
    source: str,
    scores_file: str,
    out_dir: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The batch's alerts (``alerts.json`` written into ``out_dir``)."""
    return batch_alerts(run_config(context), champions, source, scores_file, out_dir=out_dir)


@task(name="open-alerts", **STORAGE_RETRIES)
def open_new_alerts(
    alerts: list[dict[str, Any]], output_uri: str, model_name: str
) -> list[dict[str, Any]]:
    """Log the alerts under ``output_uri``; returns the new ones."""
    return open_alerts(store_from_uri(output_uri), model_name, alerts)


def _message(alert: dict[str, Any]) -> tuple[str, str]:
    channels = ", ".join(c["name"] for c in alert.get("channels", [])) or "n/a"
    subject = f"amad alert on {alert['entity']}: {channels}"
    body = (
        f"entity {alert['entity']}, {alert['start']} .. {alert['end']} ({alert['n_steps']} steps)\n"
        f"peak score {alert['peak_score']:.4g} at {alert['peak_at']} "
        f"(threshold {alert['threshold']:.4g})\n"
        f"top channels: {channels}\n"
        f"model {alert['model_version']}, data {alert['data_version']}, id {alert['alert_id']}"
    )
    return subject, body


@task(name="announce-alerts")
def announce_alerts(new: list[dict[str, Any]]) -> int:
    """One ``amad.alert.opened`` event per new alert; returns how many were emitted."""
    for alert in new:
        emit_event(
            event=EVENT,
            resource={
                "prefect.resource.id": f"amad.alert.{alert['alert_id']}",
                "prefect.resource.name": _message(alert)[0],
                "amad.entity": str(alert["entity"]),
                "amad.model-version": str(alert["model_version"]),
            },
            related=[
                {
                    "prefect.resource.id": f"amad.entity.{alert['entity']}",
                    "prefect.resource.role": "entity",
                }
            ],
            payload=alert,
        )
    return len(new)


@task(name="notify-alerts", retries=2, retry_delay_seconds=[2, 10])
def notify_alerts(new: list[dict[str, Any]], block_name: str) -> int:
    """One notification per new alert through the saved block ``block_name``
    (``<block type slug>/<name>``, e.g. ``custom-webhook/amad-alerts``)."""
    block = Block.load(block_name)
    if not isinstance(block, NotificationBlock):
        raise TypeError(f"block {block_name!r} is a {type(block).__name__}, not a notification")
    for alert in new:
        subject, body = _message(alert)
        block.notify(body=body, subject=subject, _sync=True)  # type: ignore[call-arg, unused-coroutine]
    get_run_logger().info("notified %d alerts through block %r", len(new), block_name)
    return len(new)


@task(name="plot-worst-alert")
def plot_worst_alert(
    alerts: list[dict[str, Any]], scores_file: str, out_dir: str, entity_column: str
) -> str | None:
    """PNG of the entity's scores in the batch with the threshold, for the highest-peak alert."""
    if not alerts:
        return None
    worst = max(alerts, key=lambda a: a["peak_score"])
    scores = pd.read_parquet(scores_file)
    entity_scores = scores[scores[entity_column].astype(str) == str(worst["entity"])]["score"]
    channels = ", ".join(c["name"] for c in worst.get("channels", []))
    title = f"worst alert: {worst['entity']} {worst['start']} .. {worst['end']} ({channels})"
    png = reports.render_scores_png(
        entity_scores.to_numpy(dtype=float), None, worst["threshold"], title=title
    )
    path = reports.write_png(png, Path(out_dir) / "worst_alert.png")
    reports.report_scores_plot(png, location=str(path.resolve()), key="worst-alert")
    return str(path)


@flow(name="alerts")
def raise_alerts(
    champions: dict[str, dict[str, str]],
    source: str,
    scores_file: str,
    out_dir: str,
    output_uri: str,
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Alerts of one scored batch: find, log, announce (events), notify; a summary table.

    ``champions``: entity -> ``{"bundle_dir", "version"}`` that scored it (``"*"``: every other).
    ``context``: the parent run's; without it the config is resolved from the other two.
    """
    route_library_logs()
    mine = run_context(config_path, overrides, context).to_dict()
    cfg = run_config(mine)
    found = find_alerts(champions, source, scores_file, out_dir, mine)
    new = open_new_alerts(found["alerts"], output_uri, cfg.publish.model_name)
    announce_alerts(new)
    notified = notify_alerts(new, cfg.alerts.notify_block) if cfg.alerts.notify_block and new else 0
    fresh = {a["alert_id"] for a in new}
    table = alert_table([Alert.from_dict(a) for a in found["alerts"]])
    rows = [{**row, "new": row["alert_id"] in fresh} for row in table]
    plot_worst_alert(found["alerts"], scores_file, out_dir, cfg.contract.entity_column)
    create_table_artifact(rows or [{"alerts": "none"}], key="alerts",
                          description=f"Alerts of {source}")  # fmt: skip
    return {"alerts": len(found["alerts"]), "new": len(new), "notified": notified,
            "file": found["file"], "new_ids": sorted(fresh),
            "by_entity": _by_entity(found["alerts"], fresh)}  # fmt: skip


def _by_entity(alerts: list[dict[str, Any]], fresh: set[str]) -> dict[str, dict[str, int]]:
    """Per entity: how many alerts the batch has, and how many of them are new."""
    out: dict[str, dict[str, int]] = {}
    for alert in alerts:
        counts = out.setdefault(str(alert["entity"]), {"alerts": 0, "new": 0})
        counts["alerts"] += 1
        counts["new"] += alert["alert_id"] in fresh
    return out
