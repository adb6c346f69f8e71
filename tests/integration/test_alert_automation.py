"""The server-side notifier: a real ``amad stack up --server``, the automation on
``amad.alert.opened``, one event -> exactly one POST at a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from amad.devstack.seaweed import find_weed
from amad.devstack.stack import stack_down, stack_up

pytestmark = pytest.mark.slow

ALERT = {
    "alert_id": "0123456789abcdef", "entity": "unit-7", "start": "2026-01-05T00:10:00+00:00",
    "end": "2026-01-05T00:19:00+00:00", "n_steps": 10, "peak_score": 42.0,
    "peak_at": "2026-01-05T00:15:00+00:00", "threshold": 1.5, "model_version": "v-1",
    "data_version": "d-1", "channels": [{"name": "m05", "error": 99.0}, {"name": "m02", "error": 3.0}],
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, arrived
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


_ANNOUNCE = """
import json, sys
from prefect.events.worker import EventsWorker
from flows.alerts import announce_alerts
n = announce_alerts.fn(json.loads(sys.argv[1]))
EventsWorker.drain_all()
print(n)
"""


def _announce_in_subprocess(api_url: str, alerts: list[dict[str, Any]]) -> int:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    out = subprocess.run(
        [sys.executable, "-c", _ANNOUNCE, json.dumps(alerts)],
        env=env, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def test_one_alert_event_sends_one_notification(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]], threading.Event]
) -> None:
    try:
        find_weed()
    except Exception as exc:
        pytest.skip(str(exc))
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.notify_setup import ensure_alert_automation, save_webhook_block

    url, got, arrived = receiver
    root = tmp_path / "stack"
    try:
        api = stack_up(root, server=True)["prefect"]["api_url"]
        with temporary_settings(updates={PREFECT_API_URL: api}):
            ensure_alert_automation(save_webhook_block(url))
            ensure_alert_automation(save_webhook_block(url))  # idempotent: still one automation
            # announce from a fresh process: this process's events worker may already be bound
            # to another API (the flows' test harness earlier in the session)
            assert _announce_in_subprocess(api, [ALERT]) == 1
            assert arrived.wait(120), "no notification reached the webhook"
            arrived.clear()
            arrived.wait(10)  # a second (duplicate) notification would arrive by now
    finally:
        stack_down(root)
    assert len(got) == 1
    assert got[0]["subject"] == "amad alert on unit-7"
    assert "top channels: m05 m02" in got[0]["text"] and ALERT["alert_id"] in got[0]["text"]
