"""The alert log: an alert is new exactly once, on a local folder and on a real S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.storage.alert_log import alert_key, list_alerts, open_alerts
from amad.storage.s3 import S3Store
from amad.storage.store import LocalStore, Store

ALERTS = [
    {"alert_id": "a1", "entity": "m-1", "start": "s", "end": "e"},
    {"alert_id": "a2", "entity": "m 2/x", "start": "s", "end": "e"},
]


def _check(store: Store) -> None:
    first = open_alerts(store, "amad", ALERTS)
    assert [a["alert_id"] for a in first] == ["a1", "a2"]
    assert first[1]["key"] == "alerts/amad/m_2_x/a2.json"  # unsafe characters replaced
    assert open_alerts(store, "amad", ALERTS) == []  # the same batch again: nothing new
    third = open_alerts(store, "amad", [*ALERTS, {"alert_id": "a3", "entity": "m-1"}])
    assert [a["alert_id"] for a in third] == ["a3"]
    assert [a["alert_id"] for a in list_alerts(store, "amad", "m-1")] == ["a1", "a3"]
    assert len(list_alerts(store, "amad")) == 3
    assert (
        open_alerts(store, "other-model", ALERTS[:1])[0]["key"] == "alerts/other-model/m-1/a1.json"
    )


def test_local_folder(tmp_path: Path) -> None:
    _check(LocalStore(tmp_path / "scores"))


@pytest.mark.slow
def test_real_s3_server(s3_store: S3Store) -> None:
    _check(s3_store)


def test_key_layout() -> None:
    assert alert_key("amad", {"alert_id": "x", "entity": ""}) == "alerts/amad/_/x.json"
