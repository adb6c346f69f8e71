"""Server-side alert notifications: a Prefect automation on ``amad.alert.opened`` events.

The ``alerts`` flow emits one ``amad.alert.opened`` event per *new* alert (``flows.alerts``).
On a Prefect server (``amad stack up --server``, or the cluster's), :func:`ensure_alert_automation`
saves a custom-webhook notification block and an automation whose reactive trigger fires on
every such event and whose action sends the alert (entity, channels, time range, from the event
payload) through that block. Use it *instead of* ``alerts.notify_block`` (the in-flow notifier,
which also works without a server's automation services): both at once notify twice.

    source .stack/env && python -m flows.notify_setup --webhook http://127.0.0.1:9000/hook

Re-running replaces the block and the automation of the same name (idempotent).
"""

from __future__ import annotations

import argparse
import contextlib
from uuid import UUID

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from flows.alerts import EVENT

AUTOMATION = "amad-alert-notify"
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


def ensure_alert_automation(block_id: UUID, name: str = AUTOMATION) -> UUID:
    """Create (or replace) the automation: every ``amad.alert.opened`` event -> one message."""
    with contextlib.suppress(ValueError):  # ValueError: none of that name yet
        Automation.read(name=name, _sync=True).delete(_sync=True)  # type: ignore[call-overload]
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
    if not isinstance(automation, Automation) or automation.id is None:
        raise TypeError(f"creating automation {name!r} returned {automation!r}")
    return automation.id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhook", required=True, help="URL the notifications are POSTed to")
    args = parser.parse_args(argv)
    ensure_alert_automation(save_webhook_block(args.webhook))


if __name__ == "__main__":
    main()
