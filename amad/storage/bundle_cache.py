"""A local cache of fetched versions: a scoring run fetches only the champions it lacks.

The hourly score flow needs every entity's champion on local disk; fetching all of them from the
store each hour (a thousand entities: several thousand GETs) is most of its cost when champions
rarely change. ``fetch_cached(versions, version, dest)`` reuses ``dest`` when it already holds
that version: a version id is immutable (it ends in the bundle manifest's content id), and the
local copy is still checked against the registry's record of the version before reuse, every
file's sha256 and no file more or less. Anything else (absent, partial, tampered) is fetched
again with ``Versions.fetch``, which verifies every byte it downloads. The record itself is read
from the store on every call (one GET), so a version that disappeared is noticed.

``fetch_entity_champions`` does that for every entity of a fleet with ``FETCH_THREADS`` requests
in flight (the work is waiting on the store, not the CPU; a boto3 client is thread-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amad.files import sha256_file
from amad.storage.registry import Registry, list_entities
from amad.storage.store import Store
from amad.storage.versions import Versions

log = logging.getLogger(__name__)

FETCH_THREADS = 8  # store requests in flight while fetching a fleet's champions


def holds_files(folder: Path, files: Mapping[str, str]) -> bool:
    """True when ``folder`` holds exactly ``files`` (relpath -> sha256), each matching."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    held = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if not p.is_dir()}
    if set(held) != set(files):
        return False
    return all(
        not path.is_symlink() and sha256_file(path) == files[rel] for rel, path in held.items()
    )


def fetch_cached(versions: Versions, version: str, dest: str | Path) -> Path:
    """``dest`` holding ``version``'s verified files: reused when they match, else fetched."""
    out = Path(dest)
    info = versions.show(version)
    if holds_files(out, info.files):
        log.debug("%s: %s already at %s (verified)", versions.model_name, version, out)
        return out
    try:
        return versions.fetch(version, out)
    except OSError:  # another run fetched it into place at the same moment
        if holds_files(out, info.files):
            return out
        raise


def fetch_entity_champions(
    store: Store, model_name: str, dest: str | Path, *, threads: int = FETCH_THREADS
) -> dict[str, dict[str, str]]:
    """Every entity's champion: ``{entity: {"version", "bundle_dir"}}`` (verified, cached under
    ``dest/entities/<entity>/<version>``); entities without a champion are left out."""

    def one(entity: str) -> tuple[str, dict[str, str] | None]:
        registry = Registry(store, model_name, entity=entity)
        pointer = registry.champion()
        if pointer is None:
            return entity, None
        where = Path(dest) / "entities" / entity / pointer.version
        path = fetch_cached(registry, pointer.version, where)
        return entity, {"version": pointer.version, "bundle_dir": str(path)}

    entities = list_entities(store, model_name)
    with ThreadPoolExecutor(max(1, min(threads, len(entities) or 1))) as pool:
        found = list(pool.map(one, entities))
    return {entity: champion for entity, champion in found if champion is not None}
