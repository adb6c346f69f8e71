"""The alert log on a store: one object per alert, written once, so "new" is a storage fact.

Layout under the scores store: ``alerts/<model>/<entity>/<alert id>.json``. :func:`open_alerts`
writes each alert with a create-only conditional put (``If-None-Match: *`` on S3, a locked
existence check on a local folder); an alert whose object already exists was opened by an
earlier run (the same batch scored again) and is not new. Two runs racing on one alert: exactly
one of them sees it as new. Only the new alerts should be announced (events, notifications).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from amad.errors import ConflictError
from amad.storage.store import Store

log = logging.getLogger(__name__)

PREFIX = "alerts"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@,:-]")


def alert_key(model_name: str, alert: Mapping[str, Any]) -> str:
    """``alerts/<model>/<entity>/<alert id>.json`` (unsafe characters in the entity become _)."""
    entity = _UNSAFE.sub("_", str(alert["entity"])) or "_"
    return f"{PREFIX}/{model_name}/{entity}/{alert['alert_id']}.json"


def write_new(
    store: Store, keyed: Iterable[tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Create each ``(key, record)`` that does not exist yet (a conditional create, so two
    writers never both win); return the ones this call created. Shared by the alert and drift
    logs."""
    created = []
    for key, record in keyed:
        body = json.dumps(dict(record), indent=2, sort_keys=True).encode() + b"\n"
        try:
            store.put_bytes(key, body, if_none_match=True)
        except ConflictError:
            log.debug("%s already logged", key)
            continue
        created.append((key, record))
    return created


def open_alerts(
    store: Store, model_name: str, alerts: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Write every alert not yet in the log; return those that were new (with their ``key``)."""
    keyed = [(alert_key(model_name, a), a) for a in alerts]
    new = [{**alert, "key": key} for key, alert in write_new(store, keyed)]
    log.info("alert log %s: %d new alerts", store.uri, len(new))
    return new


def list_alerts(store: Store, model_name: str, entity: str | None = None) -> list[dict[str, Any]]:
    """Every alert in the log (of one entity when given), in key order."""
    prefix = f"{PREFIX}/{model_name}/"
    if entity is not None:
        prefix += (_UNSAFE.sub("_", entity) or "_") + "/"
    return [json.loads(store.get_bytes(key)[0]) for key in store.list(prefix)]
