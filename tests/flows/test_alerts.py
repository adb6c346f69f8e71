"""One injected anomaly -> one alert -> one notification at a real local webhook, never two.

The model is a tiny untrained AMAD (its reconstruction error still singles out a 20-sigma spike),
the threshold sits above every score of normal data, the batch is scored by the library, and the
``alerts`` flow runs twice on the same scores under the Prefect harness, notifying through a saved
custom-webhook notification block that posts to an ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

import flows.alerts as alert_flow
from amad import stages
from amad.detector.bundle import load_bundle, save_bundle
from amad.detector.thresholds import Threshold
from amad.nn.model import AMAD
from amad.series.windows import Scaler
from flows.demo_steps import ENTITY, write_batch
from flows.runtime import load_run_config
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = pytest.mark.usefixtures("prefect_harness")

SPIKED = "m05"
BLOCK = "custom-webhook/amad-alerts-test"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on a free loopback port; yields its URL and the bodies it got."""
    got: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _bundle(cfg: Any, normal: pd.DataFrame, out: Path) -> Path:
    """An untrained tiny model whose threshold is twice the largest score on normal data."""
    names = [c.name for c in cfg.contract.columns]
    torch.manual_seed(0)
    model = AMAD(cfg.model, n_channels=len(names)).eval()
    kwargs: dict[str, Any] = {"model": model, "config": cfg, "history": [],
                              "scaler": Scaler().fit(normal[names].to_numpy(np.float32)),
                              "data_fingerprint": "ab" * 32, "channels": names}  # fmt: skip
    high = Threshold(value=1e30, method="percentile", kind="normalized", anomaly_ratio=1.0, n_fit=1)
    bundle = load_bundle(save_bundle(out, threshold=high, **kwargs))
    top = float(bundle.score(normal[names].to_numpy(np.float32)).scores.max())
    fitted = Threshold(value=2 * top, method="percentile", kind="normalized", anomaly_ratio=1.0,
                       n_fit=len(normal))  # fmt: skip
    return save_bundle(out, threshold=fitted, overwrite=True, **kwargs)


def test_one_anomaly_notifies_once(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = receiver
    overrides = {**tiny_overrides(tmp_path), "alerts.notify_block": BLOCK, "alerts.top_k": 2}
    cfg = load_run_config(PARAMS, overrides)
    normal = pd.read_csv(write_batch(cfg, tmp_path / "normal.csv", start_step=0, n_steps=400,
                                     seed=0, anomalies=False))  # fmt: skip
    bundle_dir = _bundle(cfg, normal, tmp_path / "bundle")
    batch = pd.read_csv(write_batch(cfg, tmp_path / "b.csv", start_step=400, n_steps=300, seed=1,
                                    anomalies=False))  # fmt: skip
    batch.loc[150:159, SPIKED] += 20 * normal[SPIKED].std()
    batch.to_csv(tmp_path / "b.csv", index=False)
    scored = stages.score_batch(cfg, bundle_dir, str(tmp_path / "b.csv"), out_dir=tmp_path / "s")
    CustomWebhookNotificationBlock(
        name="amad", url=url, json_data={"subject": "{{subject}}", "text": "{{body}}"}
    ).save(BLOCK.split("/")[1], overwrite=True)
    events: list[dict[str, Any]] = []
    real_emit = alert_flow.emit_event
    monkeypatch.setattr(alert_flow, "emit_event", lambda **kw: events.append(kw) or real_emit(**kw))

    def run() -> dict[str, Any]:
        return alert_flow.raise_alerts(
            {"*": {"bundle_dir": str(bundle_dir), "version": "v-test"}}, str(tmp_path / "b.csv"),
            scored["files"][0], str(tmp_path / "a"), str(tmp_path / "scores-out"),
            config_path=PARAMS, overrides=overrides,
        )  # fmt: skip

    first = run()
    assert (first["alerts"], first["new"], first["notified"]) == (1, 1, 1)
    assert len(got) == 1
    assert got[0]["subject"].startswith(f"amad alert on {ENTITY}: {SPIKED}")  # worst channel first
    assert f"top channels: {SPIKED}" in got[0]["text"]
    assert [e["event"] for e in events] == ["amad.alert.opened"]
    assert events[0]["resource"]["amad.entity"] == ENTITY
    assert events[0]["resource"]["prefect.resource.id"] == f"amad.alert.{first['new_ids'][0]}"
    stored = list((tmp_path / "scores-out" / "alerts" / cfg.publish.model_name / ENTITY).glob("*"))
    assert [p.stem for p in stored] == first["new_ids"]

    again = run()  # the same batch, scored and alerted again
    assert (again["alerts"], again["new"], again["notified"]) == (1, 0, 0)
    assert len(got) == 1 and len(events) == 1
    alerts = json.loads(Path(again["file"]).read_text())["alerts"]
    assert [a["alert_id"] for a in alerts] == first["new_ids"]  # same id both times
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["alerts", "worst-alert"]))
        )
    assert {a.key for a in found} == {"alerts", "worst-alert"}
    assert (tmp_path / "a" / "worst_alert.png").read_bytes().startswith(b"\x89PNG")
