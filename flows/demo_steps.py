"""The steps of ``make demo`` after the stack is up: a fleet's batches, three pipeline runs,
scoring with notifications to a local webhook, the registry and a per-entity summary.

Kept apart from ``flows.demo`` so that module can set Prefect's environment before anything
imports Prefect. The fleet is ``FLEET`` (three entities, each its own synthetic system); its
batches are telemetry in the contract's format, one file per entity, consecutive in time: a clean
one and one with anomalies per entity for the first run, plus a broken copy of ``BROKEN``'s clean
one (quarantined with its report; the other batches go on), newer data for the third run, and one
fresh fleet batch to score, in which ``NOTIFIED``'s anomalies are the generator's spikes and level
shifts (kinds the detector flags), so at least one alert reaches the webhook receiver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from prefect.states import State

from amad.config import AmadConfig
from amad.files import write_json
from amad.series.synthetic import generate, to_frame
from flows import demo_summary
from flows.runtime import load_run_config
from flows.webhook_receiver import WebhookReceiver, describe

START = pd.Timestamp("2026-01-05T00:00:00Z")
ENTITY = "unit-1"  # the one entity of ``write_batch`` by default (flow tests use it)
FLEET = ("e1", "e2", "e3")  # entity i is synthetic system i (data.synthetic.seed = i)
BROKEN = "e2"  # its extra batch in run 1 is broken: quarantined, the other batches go on
NOTIFIED = "e1"  # its fresh batch's anomalies are of ALERT_KINDS
ALERT_KINDS = ("spike", "level_shift")
WEBHOOK_BLOCK = "amad-demo-alerts"  # the custom-webhook block the demo saves for its receiver
NOTIFY_WAIT_S = 30.0


class _Progress(Protocol):
    def __call__(self, title: str) -> Any: ...

    def note(self, text: str) -> None: ...


def batch_frame(
    cfg: AmadConfig,
    *,
    start_step: int,
    n_steps: int,
    seed: int,
    anomalies: bool = True,
    entity: str = ENTITY,
    system: int | None = None,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``n_steps`` steps of ``entity`` from absolute step ``start_step`` in the contract's format;
    ``system`` (default ``data.synthetic.seed``) picks the synthetic system, ``kinds`` (default
    the config's: every kind) the anomalies injected."""
    syn = cfg.data.synthetic
    if system is not None:
        syn = syn.model_copy(update={"seed": system})
    series = generate(
        syn, n_steps=n_steps, seed=seed, start_step=start_step, anomalies=anomalies, kinds=kinds
    )
    return to_frame(
        series,
        entity=entity,
        start=START + pd.Timedelta(seconds=start_step * cfg.contract.cadence_s),
        cadence_s=cfg.contract.cadence_s,
        columns=cfg.contract.columns,
        timestamp_column=cfg.contract.timestamp_column,
        entity_column=cfg.contract.entity_column,
        label_column=cfg.contract.label_column,
    )


def write_batch(cfg: AmadConfig, path: Path, **kwargs: Any) -> Path:
    """A telemetry batch (CSV) of one entity: ``batch_frame(cfg, **kwargs)`` written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch_frame(cfg, **kwargs).to_csv(path, index=False)
    return path


def write_fleet_batch(
    cfg: AmadConfig,
    path: Path,
    entities: list[str],
    *,
    start_step: int,
    n_steps: int,
    seed: int,
) -> Path:
    """One batch (CSV) holding ``n_steps`` of every entity; entity i is its own system (seed i)."""
    frames = [
        batch_frame(cfg, start_step=start_step, n_steps=n_steps, seed=seed * 1000 + i,
                    entity=entity, system=i)
        for i, entity in enumerate(entities)
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def break_batch(good: Path, bad: Path) -> Path:
    """A deliberately broken batch: a metric column missing and the timestamps shuffled."""
    frame = pd.read_csv(good)
    frame = frame.drop(columns=[frame.columns[-2]]).sample(frac=1.0, random_state=0)
    frame.to_csv(bad, index=False)
    return bad


@dataclass(frozen=True)
class FleetBatches:
    """The demo's batch files: each pipeline run's, in ingest order, and the one to score."""

    run1: list[Path]
    run3: list[Path]
    fresh: Path
    by_entity: dict[str, list[Path]]  # every ingested batch of each entity (for the summary)


def fleet_batch_args(i: int, k: int, start: int, steps: int, **kw: Any) -> dict[str, Any]:
    """``batch_frame`` arguments of entity ``FLEET[i]``'s batch ``k`` (system i, seed k + 1000 i)."""
    return {"start_step": start, "n_steps": steps, "seed": k + 1000 * i, "entity": FLEET[i],
            "system": i, **kw}  # fmt: skip


def write_fleet(cfg: AmadConfig, incoming: Path) -> FleetBatches:
    """Per entity i (system i, sample seeds ``k + 1000 i``; e1 is the single-entity demo's
    data): a clean batch (001) and one with every anomaly kind (003) for run 1, plus a broken
    copy of ``BROKEN``'s clean batch; newer data (004) for run 3; and one fresh fleet batch (005,
    half as long) to score, where ``NOTIFIED``'s anomalies are of ``ALERT_KINDS`` and every
    other entity's of every kind."""
    n = cfg.data.synthetic.train_steps // 2
    clean, anomalous, newer, fresh = [], [], [], []
    by_entity: dict[str, list[Path]] = {}
    for i, entity in enumerate(FLEET):
        files = [
            write_batch(
                cfg,
                incoming / f"{entity}-batch-001.csv",
                **fleet_batch_args(i, 1, 0, n, anomalies=False),
            ),
            write_batch(cfg, incoming / f"{entity}-batch-003.csv", **fleet_batch_args(i, 3, n, n)),
            write_batch(
                cfg, incoming / f"{entity}-batch-004.csv", **fleet_batch_args(i, 4, 2 * n, n)
            ),
        ]
        clean.append(files[0])
        anomalous.append(files[1])
        newer.append(files[2])
        kinds = ALERT_KINDS if entity == NOTIFIED else None
        fresh.append(batch_frame(cfg, **fleet_batch_args(i, 5, 3 * n, n // 2, kinds=kinds)))
        by_entity[entity] = files
    broken = break_batch(incoming / f"{BROKEN}-batch-001.csv",
                         incoming / f"{BROKEN}-batch-002-broken.csv")  # fmt: skip
    by_entity[BROKEN].append(broken)
    score_file = incoming / "fleet-batch-005.csv"
    pd.concat(fresh, ignore_index=True).to_csv(score_file, index=False)
    return FleetBatches([*clean, broken, *anomalous], newer, score_file, by_entity)


def _pipeline_run(batches: list[Path], config_path: str, overrides: dict[str, Any]) -> Any:
    """One pipeline run; its summary dict (also when some entity failed), else its state."""
    from flows.pipeline import pipeline

    state: State[Any] = pipeline(  # return_state: a State
        [str(b) for b in batches], config_path=config_path, overrides=overrides,
        return_state=True,
    )  # fmt: skip
    result = state.result(raise_on_failure=False)
    return result if isinstance(result, dict) else state


def _score_and_notify(
    fresh: Path, scores_uri: str, config_path: str, overrides: dict[str, Any], progress: _Progress
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Register a local webhook receiver as the alert target, score ``fresh``, wait (bounded)
    for the notifications the run sent; the scoring summary and what arrived."""
    from flows.notify_setup import save_webhook_block
    from flows.score import score

    with WebhookReceiver() as receiver:
        save_webhook_block(receiver.url, WEBHOOK_BLOCK)  # as `flows.notify_setup` saves it
        notify = {**overrides, "alerts.notify_block": f"custom-webhook/{WEBHOOK_BLOCK}"}
        progress.note(f"webhook receiver at {receiver.url}, saved as the notification block "
                      f"custom-webhook/{WEBHOOK_BLOCK} (--set alerts.notify_block=...)")  # fmt: skip
        state: State[Any] = score(  # type: ignore[assignment]  # return_state: a State
            str(fresh), output_uri=scores_uri, config_path=config_path,
            overrides=notify, return_state=True,
        )  # fmt: skip
        out = state.result(raise_on_failure=False) if state.is_completed() else None
        if not isinstance(out, dict):
            progress.note(f"scoring ended {state.name}: {state.message}")
            return {}, []
        progress.note(
            f"{out['rows']} rows scored by {len(out.get('versions') or {})} entity champions: "
            f"{out['alerts']} steps flagged, {out.get('alerts_opened', 0)} new alerts, "
            f"{out.get('notified', 0)} notifications sent -> {out['outputs'][0]}"
        )
        sent = int(out.get("notified", 0))
        if sent:
            progress.note(f"waiting up to {NOTIFY_WAIT_S:.0f} s for {sent} at {receiver.url}")
            if not receiver.wait_for(sent, NOTIFY_WAIT_S):
                progress.note(f"only {len(receiver.bodies)} of {sent} arrived in time")
        else:
            progress.note("nothing new was flagged, so no notification was sent")
        got = [describe(body) for body in receiver.bodies]
    for n in got:
        progress.note(f"received: entity {n['entity']}, channels {', '.join(n['channels'])}")
    return out, got


def run_loop(
    workspace: Path,
    *,
    config_path: str,
    overrides: dict[str, Any],
    progress: _Progress,
    scores_uri: str = "s3://amad-scores/scores",
) -> int:
    """The demo after the stack is up; writes ``workspace/demo_summary.json``; 0 when every
    entity has a champion and at least one notification arrived, else 1 (the reason printed)."""
    cfg = load_run_config(config_path, overrides)
    with progress(f"Writing synthetic telemetry batches for the fleet {', '.join(FLEET)}"):
        files = write_fleet(cfg, workspace / "incoming")
        progress.note(f"{len(FLEET)} x 3 batches of {cfg.data.synthetic.train_steps // 2} steps "
                      f"x {len(cfg.contract.columns)} metrics, a broken one of {BROKEN}, and a "
                      f"fleet batch to score, in {workspace / 'incoming'}")  # fmt: skip
    runs: list[Any] = []
    with progress(f"Pipeline run 1: ingest {len(files.run1)} batches ({BROKEN}'s extra one "
                  "broken), train and decide per entity"):  # fmt: skip
        runs.append(_pipeline_run(files.run1, config_path, overrides))
        _report(runs[-1], progress)
    with progress("Pipeline run 2: no new data (ends as a named Completed state)"):
        runs.append(_pipeline_run([], config_path, overrides))
        _report(runs[-1], progress)
    with progress("Pipeline run 3: ingest newer data, retrain each entity, champion/challenger"):
        runs.append(_pipeline_run(files.run3, config_path, overrides))
        _report(runs[-1], progress)
    with progress("Scoring a fresh fleet batch; alerts notified to a local webhook receiver"):
        scored, got = _score_and_notify(files.fresh, scores_uri, config_path, overrides, progress)
    with progress("The registry and the fleet summary"):
        for entity in FLEET:
            demo_summary.print_registry(cfg, entity)
        rows = demo_summary.fleet_summary(cfg, FLEET, files.by_entity, runs, scored, got)
        demo_summary.print_fleet(rows)
        write_json(workspace / "demo_summary.json", {"entities": rows, "notifications": got})
    return verdict(rows, got)


def verdict(rows: list[dict[str, Any]], got: list[dict[str, Any]]) -> int:
    """0 when every entity with accepted data has a champion or had its models refused by a
    decision (a guardrail such as the PCA gate: the system working, said plainly), and a
    notification arrived; 1 otherwise (an entity failed or was never decided)."""
    unserved = [r for r in rows if r["accepted"] and not r["champion"]]
    for row in (r for r in unserved if r.get("refused")):
        print(f"  NOTE: {row['entity']} has no champion: its models were refused "
              f"({row['refused']}); it is not scored until one passes")  # fmt: skip
    missing = [r["entity"] for r in unserved if not r.get("refused")]
    problems = [f"no champion for {', '.join(missing)}"] if missing else []
    if not got:
        problems.append("no notification reached the webhook receiver")
    for problem in problems:
        print(f"  DEMO INCOMPLETE: {problem}")
    return 1 if problems else 0


def _report(result: Any, progress: _Progress) -> None:
    if not isinstance(result, dict):
        progress.note(f"state: {getattr(result, 'name', '?')}: {getattr(result, 'message', '')}")
        return
    progress.note(
        f"data version {str(result['data_version'])[:12]}: {result['accepted']} accepted, "
        f"{result['quarantined']} quarantined"
    )
    for entity, rec in sorted(result["entities"].items()):
        verdict = "PROMOTED" if rec["promoted"] else "NOT promoted"
        progress.note(f"{entity}: challenger {rec['challenger']} {verdict}: {rec['reason']}")
        ev = rec.get("evaluation") or {}
        shown = ", ".join(f"{who} {_num(ev.get(who))}" for who in ("challenger", "champion", "pca"))
        progress.note(f"  {ev.get('metric', '?')} on window {ev.get('eval_id')}: {shown}")
    for entity, why in sorted(result.get("failed", {}).items()):
        progress.note(f"{entity}: FAILED: {why}")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"
