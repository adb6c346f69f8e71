"""The model registry: versions, an append-only promotion history and a champion pointer.

``Registry`` is ``Versions`` (``amad.storage.versions``: immutable, verified bundles) plus the
pointer that says which version serves. Layout in a ``Store`` for a model ``NAME``, next to the
versions::

    models/NAME/history/00000001.json             one object per promotion/rollback, never rewritten
    models/NAME/decisions/<utc>-<run>.json        every champion/challenger decision, with numbers
    models/NAME/champion.json                     the pointer: version, run id, generation, lineage
    models/NAME/entities/ENTITY/...               the same layout for one entity of a fleet

The champion pointer moves only after the target version is verified by reading every file back,
and only with a conditional write: ``If-Match`` on the pointer's ETag (``If-None-Match: *`` for
the first champion). Of two concurrent promotions exactly one wins; the other gets
``ConflictError`` and nothing is lost, because each successful move bumps ``generation`` and
writes ``history/<generation>.json`` (repaired on the next promotion if a crash skipped it).
``lineage`` in the pointer is the stack of earlier champions that ``rollback`` pops.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal

from amad.errors import (
    ArtifactError,
    ConflictError,
    CorruptPointerError,
    ObjectNotFoundError,
    PromotionError,
)
from amad.files import sha256_bytes
from amad.storage.records import ChampionPointer, VersionInfo, json_bytes, load_json, utc_now
from amad.storage.store import Store
from amad.storage.versions import Versions

log = logging.getLogger(__name__)

_MAX_LINEAGE = 100


class _Read(Enum):
    CURRENT = "current"


READ_CURRENT = _Read.CURRENT  # promote(): read the pointer now instead of an expected one


class Registry(Versions):
    """Versions, history and champion of one model name (and entity) in one store.

    With ``entity`` every key lives under ``models/NAME/entities/ENTITY/``: each entity of a fleet
    has its own versions, history and champion, with the same guarantees (``model.scope: entity``).
    """

    # -- keys --------------------------------------------------------------------------------
    @property
    def pointer_key(self) -> str:
        return f"{self.base}/champion.json"

    def _history_key(self, generation: int) -> str:
        return f"{self.base}/history/{generation:08d}.json"

    def champion(self) -> ChampionPointer | None:
        """The current champion pointer (with its ETag), or None before the first promotion.

        A pointer that exists but cannot be read raises ``CorruptPointerError``; ``promote``
        and ``rollback`` replace it (see ``_current_or_recovered``).
        """
        try:
            data, etag = self.store.get_bytes(self.pointer_key)
        except ObjectNotFoundError:
            return None
        try:
            return ChampionPointer.from_bytes(data, etag)
        except ArtifactError as exc:
            raise CorruptPointerError(
                f"{self.model_name}: the champion pointer {self.pointer_key} is corrupt ({exc}); "
                "`amad registry promote VERSION` or `amad registry rollback` replaces it",
                etag=etag,
            ) from exc

    def _current_or_recovered(self) -> ChampionPointer | None:
        """The champion; for a corrupt pointer, the last pointer the history recorded, carrying
        the corrupt object's ETag (so the repair is still a compare-and-swap on it)."""
        try:
            return self.champion()
        except CorruptPointerError as exc:
            events = self.history()
            last = max(events, key=lambda e: int(e.get("generation", 0)), default=None)
            log.warning("%s; rebuilding it from history generation %s", exc,
                        last.get("generation") if last else "none")  # fmt: skip
            if last is None:
                return ChampionPointer(self.model_name, "", "", "corrupt", "", 0, [], exc.etag)
            return ChampionPointer.from_bytes(json_bytes(last), exc.etag or "")

    def history(self) -> list[dict[str, Any]]:
        """Every promotion/rollback event, oldest first."""
        keys = self.store.list(f"{self.base}/history/")
        return [load_json(self.store.get_bytes(k)[0], k) for k in keys if k.endswith(".json")]

    # -- move the pointer -------------------------------------------------------------------
    def promote(
        self,
        version: str,
        *,
        run_id: str,
        reason: str,
        expected: ChampionPointer | _Read | None = READ_CURRENT,
        decision: Mapping[str, Any] | None = None,
    ) -> ChampionPointer:
        """Make ``version`` the champion; ``ConflictError`` if the pointer moved meanwhile.

        ``expected`` is the champion the decision was made against (None: there was none);
        by default the pointer is read now.
        """
        self.verify(version)
        current = self._current_or_recovered() if isinstance(expected, _Read) else expected
        if current is not None and current.version == version:
            log.info("%s: %s is already the champion", self.model_name, version)
            return current
        lineage = (
            [*current.lineage, current.version][-_MAX_LINEAGE:]
            if current and current.version
            else []
        )
        return self._move(current, version, lineage, run_id, reason, "promote", decision)

    def rollback(
        self, *, run_id: str, reason: str = "rollback", to_version: str | None = None
    ) -> ChampionPointer:
        """Put the previous champion (or ``to_version`` from the lineage) back in place."""
        if to_version is not None and not to_version.strip():
            raise PromotionError(f"{self.model_name}: rollback target is empty (give a version)")
        current = self._current_or_recovered()
        if current is None or not current.lineage:
            raise PromotionError(f"{self.model_name}: no earlier champion to roll back to")
        target = to_version or current.lineage[-1]
        if target not in current.lineage:
            raise PromotionError(f"{self.model_name}: {target} was never a champion before")
        self.verify(target)
        cut = len(current.lineage) - 1 - current.lineage[::-1].index(target)
        return self._move(current, target, current.lineage[:cut], run_id, reason, "rollback", None)

    def _move(
        self,
        current: ChampionPointer | None,
        version: str,
        lineage: list[str],
        run_id: str,
        reason: str,
        action: Literal["promote", "rollback"],
        decision: Mapping[str, Any] | None,
    ) -> ChampionPointer:
        if current is not None and current.version:  # not the stand-in for a corrupt pointer
            self._write_history(current, action="recovered", previous=None, decision=None)
        new = ChampionPointer(
            model_name=self.model_name,
            version=version,
            run_id=run_id,
            reason=reason,
            promoted_at=utc_now().isoformat(timespec="microseconds"),
            generation=(current.generation if current else 0) + 1,
            lineage=lineage,
        )
        data = json_bytes(new.to_dict())
        try:
            if current is None:
                etag = self.store.put_bytes(self.pointer_key, data, if_none_match=True)
            else:
                etag = self.store.put_bytes(self.pointer_key, data, if_match=current.etag)
        except ConflictError as exc:
            raise ConflictError(
                f"{self.model_name}: the champion changed while promoting {version} "
                f"(run {run_id}); re-read the champion and decide again"
            ) from exc
        new = ChampionPointer(**{**new.__dict__, "etag": etag})
        previous = current.version if current else None
        self._write_history(new, action=action, previous=previous, decision=decision)
        log.info("%s: champion is now %s (%s by run %s)", self.model_name, version, action, run_id)
        return new

    def _write_history(
        self,
        pointer: ChampionPointer,
        *,
        action: str,
        previous: str | None,
        decision: Mapping[str, Any] | None,
    ) -> None:
        """Write the event for ``pointer.generation`` once (repairs a skipped event too)."""
        key = self._history_key(pointer.generation)
        if self.store.exists(key):
            return
        event = {
            **pointer.to_dict(),
            "action": action,
            "previous_version": previous,
            "decision": dict(decision) if decision else None,
        }
        try:
            self.store.put_bytes(key, json_bytes(event), if_none_match=True)
        except ConflictError:
            log.debug("history event %s already written", key)

    def decided_versions(self) -> list[VersionInfo]:
        """Versions compared with the champion and decided (promoted or not). A published
        challenger whose run failed before its decision does not count, so the next run
        retries the data it was trained on."""
        decided = set()
        for key in self.store.list(f"{self.base}/decisions/"):
            if key.endswith(".json"):
                decided.add(load_json(self.store.get_bytes(key)[0], key).get("challenger_version"))
        return [i for i in self.list_versions() if i.version in decided]

    def decided_data_versions(self) -> list[str]:
        """Data versions "trained on" in the pipeline's sense (see ``decided_versions``)."""
        return sorted({i.data_version for i in self.decided_versions() if i.data_version})

    def record_decision(self, decision: Mapping[str, Any], *, run_id: str) -> str:
        """Store a champion/challenger decision (promoted or not); return its key."""
        key = f"{self.base}/decisions/{utc_now():%Y%m%dT%H%M%S%fZ}-{sha256_bytes(run_id.encode())[:8]}.json"
        self.store.put_bytes(key, json_bytes({"run_id": run_id, **dict(decision)}))
        return key


def list_models(store: Store) -> list[str]:
    """Model names that have anything in the store."""
    return sorted({k.split("/")[1] for k in store.list("models/") if k.count("/") >= 2})


def list_entities(store: Store, model_name: str) -> list[str]:
    """Entities of ``model_name`` that have anything in the store."""
    prefix = f"models/{model_name}/entities/"
    return sorted({k[len(prefix) :].split("/")[0] for k in store.list(prefix) if k.count("/") >= 4})
