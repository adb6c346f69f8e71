"""The fleet at a glance: one row per entity of a model (``model.scope: entity``).

Each entity has its own registry under ``models/NAME/entities/ENTITY/`` (``Registry(...,
entity=...)``); ``fleet_rows`` reads every entity's champion pointer and the champion's record
and returns the entity, champion version, data version, a metric (by default the primary metric
the promoting decision measured on the evaluation window, else the version's training metric of
that name) and the champion's age. An
entity with versions but no champion yet (every challenger rejected, or its retrains failed)
gets a row with ``champion`` None, so a gap in the fleet is visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

from amad.storage.records import utc_now
from amad.storage.registry import Registry, list_entities
from amad.storage.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetRow:
    """One entity's champion, as ``amad registry list`` shows it."""

    entity: str
    champion: str | None
    data_version: str | None
    metric: str
    value: float | None
    age_s: float | None  # seconds since the champion was promoted
    versions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _age_s(promoted_at: str, now: dt.datetime) -> float | None:
    try:
        then = dt.datetime.fromisoformat(promoted_at)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return max(0.0, (now - then).total_seconds())


def _decided_value(registry: Registry, generation: int, metric: str) -> Any:
    """The champion's ``metric`` on its evaluation window, from the decision that promoted it."""
    for event in reversed(registry.history()):
        if event.get("generation") == generation:
            evaluation = (event.get("decision") or {}).get("evaluation") or {}
            return evaluation.get("challenger") if evaluation.get("metric") == metric else None
    return None


def entity_row(registry: Registry, metric: str, now: dt.datetime | None = None) -> FleetRow:
    """The row of one entity's registry (``registry.entity`` must be set)."""
    if registry.entity is None:
        raise ValueError("entity_row needs an entity registry")
    pointer = registry.champion()
    versions = registry.list_versions()
    info = next((v for v in versions if pointer and v.version == pointer.version), None)
    value = _decided_value(registry, pointer.generation, metric) if pointer else None
    if value is None and info is not None:
        value = info.metrics.get(metric)
    return FleetRow(
        entity=registry.entity,
        champion=pointer.version if pointer else None,
        data_version=info.data_version if info else None,
        metric=metric,
        value=float(value) if isinstance(value, int | float) else None,
        age_s=_age_s(pointer.promoted_at, now or utc_now()) if pointer else None,
        versions=len(versions),
    )


def fleet_rows(store: Store, model_name: str, *, metric: str = "vus_pr") -> list[FleetRow]:
    """Every entity of ``model_name`` in ``store``, sorted by entity id."""
    now = utc_now()
    return [
        entity_row(Registry(store, model_name, entity=entity), metric, now)
        for entity in list_entities(store, model_name)
    ]


def format_age(age_s: float | None) -> str:
    """``42s``, ``7m``, ``5h``, ``3d``; ``-`` when unknown."""
    if age_s is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age_s >= size:
            return f"{age_s / size:.0f}{unit}"
    return f"{age_s:.0f}s"
