"""The demo's webhook receiver: POSTed JSON is kept, waiting is bounded, the port is released."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from flows.webhook_receiver import WebhookReceiver, describe


def _post(url: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_keeps_bodies_waits_bounded_and_releases_its_port() -> None:
    with WebhookReceiver() as receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.wait_for(1, 0.2) is False  # nothing yet: returns after the timeout
        body = {"subject": "amad alert on e1: m05, m02", "text": "top channels: m05, m02"}
        assert _post(receiver.url, body) == 204
        assert receiver.wait_for(1, 10)
        assert receiver.bodies == [body]
        port = int(receiver.url.split(":")[2].split("/")[0])
    receiver.close()  # idempotent
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))  # nobody listens there once the block ended


def test_describe_reads_entity_and_channels_as_the_alerts_flow_writes_them() -> None:
    got = describe({"subject": "amad alert on unit-7: m05, m02", "text": "..."})
    assert (got["entity"], got["channels"]) == ("unit-7", ["m05", "m02"])
    # the server-side automation's subject names no channels: they come from the text
    automation = {"subject": "amad alert on e3", "text": "x\ntop channels: m01 m04 \npeak 3"}
    assert describe(automation)["entity"] == "e3"
    assert describe(automation)["channels"] == ["m01", "m04"]
    assert describe({"subject": "amad alert on e2: n/a"})["channels"] == []
