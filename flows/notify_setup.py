"""Server-side automations: notify on ``amad.alert.opened``, retrain on ``amad.drift.detected``.

The ``alerts`` flow emits one ``amad.alert.opened`` event per *new* alert (``flows.alerts``).
On a Prefect server (``amad stack up --server``, or the cluster's), :func:`ensure_alert_automation`
saves a custom-webhook notification block and an automation whose reactive trigger fires on
every such event and whose action sends the alert (entity, channels, time range, from the event
payload) through that block. Use it *instead of* ``alerts.notify_block`` (the in-flow notifier,
which also works without a server's automation services): both at once notify twice.

    source .stack/env && python -m flows.notify_setup --webhook http://127.0.0.1:9000/hook

Drift acts (:func:`ensure_retrain_automation`): on ``amad.drift.detected`` events
(``flows.drift``) that no retrain already follows (``amad.retrain-follows: false``), run the
``pipeline`` deployment (``pipeline/nightly`` in ``infra/prefect.yaml``), at most once per
cool-down window (``alerts.drift_retrain_cooldown_s``):

    python -m flows.notify_setup --retrain-deployment pipeline/nightly [--webhook URL]

The trigger is ``posture: Reactive, threshold: 1, within: <cool-down>``. Prefect's server
evaluates it in buckets of ``within`` seconds by the events' ``occurred`` time: the first
matching event opens a bucket ``[t0, t0 + within)`` and, reaching the threshold of 1, fires at
once; the bucket is then replaced by the next one, ``[t0 + within, t0 + 2 within)``, and events
that occurred before its start are ignored. So the drift events of one window start exactly one
retrain, and the first event after the window starts the next. (``within: 0`` would fire on
every event, as the alert notifier does; a threshold of N > 1 would wait for N events, and a
``Proactive`` posture fires on their *absence*.) The windows are tumbling, not sliding: two
retrains are at least ``within`` apart except across a window boundary, so any span of
``within`` seconds sees at most two.

Re-running replaces the block and the automations of the same name (idempotent).
"""

from __future__ import annotations

import argparse
import contextlib
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import RunDeployment, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from flows import drift
from flows.alerts import EVENT
from flows.runtime import load_run_config

AUTOMATION = "amad-alert-notify"
RETRAIN_AUTOMATION = "amad-drift-retrain"
BLOCK = "amad-alerts"
SUBJECT = "amad alert on {{ event.resource['amad.entity'] }}"
BODY = (
    "entity {{ event.payload.entity }}, {{ event.payload.start }} .. {{ event.payload.end }}\n"
    "top channels: {% for c in event.payload.channels %}{{ c.name }} {% endfor %}\n"
    "peak score {{ event.payload.peak_score }}, model {{ event.payload.model_version }}, "
    "id {{ event.payload.alert_id }}"
)


def save_webhook_block(url: str, name: str = BLOCK) -> UUID:
    """A custom-webhook notification block posting ``{"subject", "text"}`` JSON to ``url``."""
    block = CustomWebhookNotificationBlock(
        name=name, url=url, json_data={"subject": "{{subject}}", "text": "{{body}}"}
    )
    block_id = block.save(name, overwrite=True, _sync=True)  # type: ignore[call-arg]
    if not isinstance(block_id, UUID):
        raise TypeError(f"saving block {name!r} returned {block_id!r}")
    return block_id


def _replace(name: str) -> None:
    with contextlib.suppress(ValueError):  # ValueError: none of that name yet
        Automation.read(name=name, _sync=True).delete(_sync=True)  # type: ignore[call-overload]


def _created(automation: Any, name: str) -> UUID:
    if not isinstance(automation, Automation) or automation.id is None:
        raise TypeError(f"creating automation {name!r} returned {automation!r}")
    return automation.id


def ensure_alert_automation(block_id: UUID, name: str = AUTOMATION) -> UUID:
    """Create (or replace) the automation: every ``amad.alert.opened`` event -> one message."""
    _replace(name)
    automation = Automation(
        name=name,
        description="One notification per new amad alert (flows/notify_setup.py)",
        trigger=EventTrigger(
            expect={EVENT},
            match={"prefect.resource.id": "amad.alert.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    ).create(_sync=True)  # type: ignore[call-arg]
    return _created(automation, name)


def retrain_trigger(cooldown_s: float) -> EventTrigger:
    """Drift no retrain follows yet -> fire on the first event, then not again until the
    window of ``cooldown_s`` seconds it opened has passed (see the module docstring)."""
    return EventTrigger(
        expect={drift.EVENT},
        match={"prefect.resource.id": "amad.model.*", drift.RETRAIN_FOLLOWS: "false"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(seconds=cooldown_s),
    )


def deployment_id(name: str) -> UUID:
    """The id of the deployment ``<flow name>/<deployment name>`` (e.g. ``pipeline/nightly``)."""
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name).id


def ensure_retrain_automation(
    deployment: UUID,
    cooldown_s: float,
    *,
    parameters: dict[str, Any] | None = None,
    name: str = RETRAIN_AUTOMATION,
) -> UUID:
    """Create (or replace) the automation: drift -> one run of ``deployment`` per cool-down."""
    _replace(name)
    automation = Automation(
        name=name,
        description=f"Drift acts: retrain at most once per {cooldown_s:g} s (flows/notify_setup.py)",
        trigger=retrain_trigger(cooldown_s),
        actions=[RunDeployment(source="selected", deployment_id=deployment, parameters=parameters)],
    ).create(_sync=True)  # type: ignore[call-arg]
    return _created(automation, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhook", help="URL the alert notifications are POSTed to")
    parser.add_argument("--retrain-deployment", metavar="FLOW/DEPLOYMENT",
                        help="run this deployment on drift, e.g. pipeline/nightly")  # fmt: skip
    parser.add_argument(
        "--config", default=None, help="params file (alerts.drift_retrain_cooldown_s)"
    )
    args = parser.parse_args(argv)
    if not (args.webhook or args.retrain_deployment):
        parser.error("give --webhook, --retrain-deployment or both")
    if args.webhook:
        ensure_alert_automation(save_webhook_block(args.webhook))
    if args.retrain_deployment:
        cooldown = load_run_config(args.config).alerts.drift_retrain_cooldown_s
        ensure_retrain_automation(deployment_id(args.retrain_deployment), cooldown)


if __name__ == "__main__":
    main()
