"""The drift log on a store: one object per drift finding, written once, so "new" is a storage fact.

Layout: ``drift/<model>/<batch>/<subject>.json`` (the finding's ``key``, see
``amad.evaluation.drift.DriftFinding``). :func:`open_drift` writes each finding create-only (as
``amad.storage.alert_log`` does for alerts); a finding whose object exists was logged by an
earlier run (the same batch validated again, a retried task) and is not new. Only new findings
should be announced, so each drifted metric of a batch is announced at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from amad.storage.alert_log import write_new
from amad.storage.store import Store

log = logging.getLogger(__name__)

PREFIX = "drift"


def drift_key(model_name: str, finding: Mapping[str, Any]) -> str:
    """``drift/<model>/<finding key>.json``."""
    return f"{PREFIX}/{model_name}/{finding['key']}.json"


def open_drift(
    store: Store, model_name: str, findings: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Write every finding (``DriftFinding.to_dict()``) not yet logged; return the new ones."""
    keyed = [(drift_key(model_name, f), f) for f in findings]
    new = [{**finding, "log_key": key} for key, finding in write_new(store, keyed)]
    log.info("drift log %s: %d new findings", store.uri, len(new))
    return new
