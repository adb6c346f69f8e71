"""A webhook receiver on 127.0.0.1: where the demo's alert notifications arrive, and are shown.

``WebhookReceiver`` is a stdlib ``ThreadingHTTPServer`` on a free loopback port, serving in a
daemon thread, that keeps the JSON body of every POST (a Prefect custom-webhook notification
block posts ``{"subject", "text"}``). It is a context manager: the server is shut down and its
socket closed on exit, also when the block raised. ``wait_for(n, timeout_s)`` blocks, bounded,
until ``n`` bodies arrived. ``describe`` reads the entity and the channels back out of one
notification as ``flows.alerts`` writes it.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_SUBJECT = re.compile(r"^amad alert on (?P<entity>.+?)(?:: (?P<channels>.*))?$")


class WebhookReceiver:
    """Collects POSTed JSON bodies at ``url`` (``http://127.0.0.1:<free port>/hook``)."""

    def __init__(self, path: str = "/hook") -> None:
        self.bodies: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        received, arrived = self.bodies, self._arrived

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"raw": raw.decode(errors="replace")}
                with arrived:
                    received.append(body if isinstance(body, dict) else {"raw": body})
                    arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # no access log on the demo's stdout
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """True once ``count`` bodies arrived; False after ``timeout_s`` seconds without."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.bodies) >= count, timeout=timeout_s)


def describe(body: dict[str, Any]) -> dict[str, Any]:
    """The entity and the channels a notification names (from its subject, then its text)."""
    subject = str(body.get("subject") or "")
    match = _SUBJECT.match(subject.strip())
    entity = match.group("entity") if match else None
    channels = (match.group("channels") or "") if match else ""
    if not channels:
        found = re.search(r"top channels: (.*)", str(body.get("text") or ""))
        channels = found.group(1) if found else ""
    names = [c.strip() for c in re.split(r"[,\s]+", channels) if c.strip() and c.strip() != "n/a"]
    return {"entity": entity, "channels": names, "subject": subject}
