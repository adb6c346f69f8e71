"""The demo's steps end to end on a fleet (tiny model, local registry, real ingest and DVC):
three entities, one entity's broken batch quarantined with its report while the others go on, a
champion per entity through the pipeline's fan-out, and the injected anomaly notified to the
demo's webhook receiver on 127.0.0.1, naming the entity. Then the ``score`` flow is shown to
resolve its config once per run, the ``alerts`` subflow included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import amad.config
from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import versioning
from flows import demo_steps, notify_setup, runtime
from flows.demo import Progress
from flows.demo_steps import BROKEN, FLEET, NOTIFIED, batch_frame
from flows.runtime import load_run_config
from flows.score import score
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("demo-fleet")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # runs/ (windows, bundles) lands in the test's folder
        ws = root / "ws"
        ws.mkdir()
        versioning.init_repo(ws, no_scm=True)
        overrides = {
            **tiny_overrides(ws),
            "fleet.entities": list(FLEET),
            "fleet.runner": "default",
            # a 1-epoch toy model: a threshold that flags something on every evaluation window
            # (the min-alert-rate guardrail) and no score-stability guardrail; not under test
            "score.anomaly_ratio": 5.0,
            "promote.max_score_psi": 1e6,
        }
        registered: list[str] = []
        real_save = notify_setup.save_webhook_block

        def spy_save(url: str, name: str = notify_setup.BLOCK) -> Any:
            registered.append(url)
            return real_save(url, name)

        mp.setattr(notify_setup, "save_webhook_block", spy_save)
        scores = root / "scores"
        code = demo_steps.run_loop(ws, config_path=PARAMS, overrides=overrides,
                                   progress=Progress(), scores_uri=str(scores))  # fmt: skip
        summary = json.loads((ws / "demo_summary.json").read_text())
        yield {"code": code, "ws": ws, "overrides": overrides, "summary": summary,
               "registered": registered, "scores": scores}  # fmt: skip


def test_fleet_batches_are_accepted_or_quarantined_per_entity(demo: dict[str, Any]) -> None:
    rows = {r["entity"]: r for r in demo["summary"]["entities"]}
    assert list(rows) == list(FLEET) and len(FLEET) == 3
    assert {e: r["quarantined"] for e, r in rows.items()} == {e: int(e == BROKEN) for e in FLEET}
    assert all(r["accepted"] == 3 for r in rows.values())  # run 1's two and run 3's one
    (report,) = rows[BROKEN]["reports"]
    held = Path(report).parent
    assert held.parent == demo["ws"] / "quarantine"
    assert json.loads(Path(report).read_text())["success"] is False
    assert [p.name for p in (held / "original").iterdir()] == [f"{BROKEN}-batch-002-broken.csv"]


def test_every_entity_has_its_own_champion(demo: dict[str, Any]) -> None:
    cfg = load_run_config(PARAMS, demo["overrides"])
    store = store_from_config(cfg.publish)
    rows = {r["entity"]: r for r in demo["summary"]["entities"]}
    champions = {}
    for entity in FLEET:
        pointer = Registry(store, cfg.publish.model_name, entity=entity).champion()
        assert pointer is not None, f"{entity}: no champion ({rows[entity]['decision']})"
        assert rows[entity]["champion"] == pointer.version
        champions[entity] = pointer.version
    assert len(set(champions.values())) == len(FLEET)  # one model per entity
    assert Registry(store, cfg.publish.model_name).champion() is None  # nothing model-wide


def test_the_injected_anomaly_reaches_the_webhook_receiver(demo: dict[str, Any]) -> None:
    assert len(demo["registered"]) == 1  # the demo registered its receiver once
    assert demo["registered"][0].startswith("http://127.0.0.1:")
    got = demo["summary"]["notifications"]
    rows = {r["entity"]: r for r in demo["summary"]["entities"]}
    assert any(n["entity"] == NOTIFIED for n in got), got
    assert all(n["channels"] for n in got)  # each names the channels it blames
    for entity, row in rows.items():  # exactly one notification per new alert, per entity
        assert len(row["notifications"]) == row["new_alerts"], entity
    assert len(got) == sum(r["new_alerts"] for r in rows.values())
    alerts = list((demo["scores"] / "alerts").rglob("*.json"))
    assert {p.parent.name for p in alerts} == {n["entity"] for n in got}
    assert demo["code"] == 0


def test_score_resolves_its_config_once_per_run(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_run_config(PARAMS, demo["overrides"])
    n = cfg.data.synthetic.train_steps // 2
    frames = [
        batch_frame(cfg, **demo_steps.fleet_batch_args(i, 6, 4 * n, n // 2))
        for i in range(len(FLEET))
    ]
    batch = demo["ws"] / "later" / "fleet-batch-006.csv"
    batch.parent.mkdir()
    import pandas as pd

    pd.concat(frames, ignore_index=True).to_csv(batch, index=False)
    resolutions: list[Any] = []
    real_resolve = runtime.resolve_config

    def counting_resolve(*args: Any, **kwargs: Any) -> Any:
        resolutions.append(args)
        return real_resolve(*args, **kwargs)

    monkeypatch.setattr(runtime, "resolve_config", counting_resolve)
    monkeypatch.setattr(amad.config, "resolve_config", counting_resolve)
    out = score(str(batch), output_uri=str(demo["scores"]), config_path=PARAMS,
                overrides=demo["overrides"])  # fmt: skip
    assert out["batches"] == ["fleet-batch-006"] and set(out["versions"]) == set(FLEET)
    assert len(resolutions) == 1, f"config resolved {len(resolutions)} times in one score run"
