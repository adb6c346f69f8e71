"""What ``make demo`` prints at the end: each entity's registry and one line per fleet entity.

Everything is read back from where the run left it, not from what the demo meant to do: a
batch counts as quarantined when ``<quarantine_dir>/<sha256>/`` holds it with its report, as
accepted when its validation report (``<reports_dir>/<sha256>/report.json``) says success; the
champion comes from the entity's registry; the decision from the last pipeline run that decided
for the entity; flagged steps and alerts from the ``score`` run; notifications from what the
webhook receiver got. ``fleet_summary`` returns the rows (also written as JSON by the demo),
``print_fleet`` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from amad.config import AmadConfig
from amad.files import sha256_file
from amad.storage.registry import Registry
from amad.storage.store import store_from_config


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def print_registry(cfg: AmadConfig, entity: str | None) -> None:
    """One entity's versions (data version, training metrics), champion and promotion history."""
    registry = Registry(store_from_config(cfg.publish), cfg.publish.model_name, entity=entity)
    pointer = registry.champion()
    print(f"\n  Registry {registry!r}")
    print(f"  {'version':<31} {'data version':<14} {'val_recon':>9} {'val_alerts':>10}")
    for info in registry.list_versions():
        mark = "  <== champion" if pointer and pointer.version == info.version else ""
        print(
            f"  {info.version:<31} {str(info.data_version)[:12]:<14} "
            f"{_num(info.metrics.get('val_recon_error')):>9} "
            f"{_num(info.metrics.get('val_alert_rate')):>10}{mark}"
        )
    if pointer is None:
        print("  no champion")
    for event in registry.history():
        numbers = (event.get("decision") or {}).get("numbers") or {}
        shown = ", ".join(f"{k} {_num(v)}" for k, v in numbers.items() if isinstance(v, float))
        print(f"  history: {event.get('action', '?')} {event.get('version', '?')}: "
              f"{event.get('reason', '')} [{shown}]")  # fmt: skip


def batch_outcomes(cfg: AmadConfig, batches: Sequence[Path]) -> dict[str, Any]:
    """Accepted and quarantined counts of ``batches``, and each quarantined one's report."""
    contract = cfg.contract
    out: dict[str, Any] = {"accepted": 0, "quarantined": 0, "reports": []}
    for path in batches:
        sha = sha256_file(path)
        held = Path(contract.quarantine_dir) / sha
        report = Path(contract.reports_dir) / sha / "report.json"
        if (held / "report.json").is_file():
            out["quarantined"] += 1
            out["reports"].append(str(held / "report.json"))
        elif report.is_file() and json.loads(report.read_text()).get("success"):
            out["accepted"] += 1
    return out


def _decision(runs: Sequence[Any], entity: str) -> str:
    """The last pipeline run's word on ``entity``: promoted, kept (why) or failed (why)."""
    for number, result in reversed(list(enumerate(runs, start=1))):
        if not isinstance(result, dict):
            continue
        rec = (result.get("entities") or {}).get(entity)
        if rec is not None:
            verdict = "challenger promoted" if rec["promoted"] else "challenger not promoted"
            return f"run {number}: {verdict}: {rec.get('reason') or ''}"
        why = (result.get("failed") or {}).get(entity)
        if why is not None:
            return f"run {number}: FAILED: {why}"
    return "no decision"


def refusal(runs: Sequence[Any], entity: str) -> str | None:
    """Why the last decision on ``entity`` kept its challenger out (a guardrail or the margin:
    the system working), or None when it was promoted, failed or never decided."""
    for result in reversed(list(runs)):
        if not isinstance(result, dict):
            continue
        rec = (result.get("entities") or {}).get(entity)
        if rec is not None:
            return None if rec["promoted"] else str(rec.get("reason") or "not promoted")
        if entity in (result.get("failed") or {}):
            return None
    return None


def fleet_summary(
    cfg: AmadConfig,
    entities: Sequence[str],
    batches: Mapping[str, Sequence[Path]],
    runs: Sequence[Any],
    scored: Mapping[str, Any],
    notifications: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One row per entity: batches, champion, decision, flagged steps, alerts, notifications."""
    store = store_from_config(cfg.publish)
    per_entity = scored.get("entities") or {}
    unscored: dict[str, str] = {}
    for reasons in (scored.get("unscored") or {}).values():
        unscored.update(reasons)
    rows = []
    for entity in entities:
        pointer = Registry(store, cfg.publish.model_name, entity=entity).champion()
        score = per_entity.get(entity) or {}
        rows.append({
            "entity": entity,
            **batch_outcomes(cfg, batches.get(entity, [])),
            "champion": pointer.version if pointer else None,
            "decision": _decision(runs, entity),
            "refused": refusal(runs, entity),
            "scored_rows": score.get("rows", 0),
            "flagged_steps": score.get("flagged", 0),
            "alerts": score.get("alerts", 0),
            "new_alerts": score.get("new", 0),
            "unscored": unscored.get(entity),
            "notifications": [dict(n) for n in notifications if n.get("entity") == entity],
        })  # fmt: skip
    return rows


def _scoring(row: Mapping[str, Any]) -> str:
    if row["unscored"]:
        return f"not scored ({row['unscored']})"
    if not row["flagged_steps"]:
        return (f"{row['scored_rows']} rows scored, flagged nothing: no alert, no notification "
                "(the detector is weak on this data; README, Honest results)")  # fmt: skip
    got = len(row["notifications"])
    channels = sorted({c for n in row["notifications"] for c in n.get("channels", [])})
    return (f"{row['scored_rows']} rows scored, {row['flagged_steps']} steps flagged, "
            f"{row['alerts']} alerts ({row['new_alerts']} new), {got} notifications received"
            + (f" (channels {', '.join(channels)})" if channels else ""))  # fmt: skip


def print_fleet(rows: Sequence[Mapping[str, Any]]) -> None:
    """The per-entity summary, one block per entity."""
    print("\n  Fleet summary")
    print(f"  {'entity':<8} {'batches accepted/quarantined':<29} champion")
    for row in rows:
        batches = f"{row['accepted']} / {row['quarantined']}"
        print(f"  {row['entity']:<8} {batches:<29} {row['champion'] or 'none'}")
        for report in row["reports"]:
            print(f"  {'':<8} quarantined with its report: {report}")
        print(f"  {'':<8} decision: {row['decision']}")
        print(f"  {'':<8} scoring: {_scoring(row)}")
