"""The registry's JSON records: a version's ``version.json`` and the champion pointer.

Both are written as strict JSON (NaN/inf become null) with sorted keys, and read back with a
typed ``ArtifactError`` when malformed. ``bundle_file_hashes`` reads the ``{name: sha256}`` map
from a bundle manifest (``amad.detector.bundle`` writes ``{name: {"sha256": ..., "bytes": ...}}``;
plain hex strings are accepted too).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from amad.errors import ArtifactError
from amad.files import strict_json

FORMAT = "amad-registry/1"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def json_bytes(obj: Any) -> bytes:
    """Strict JSON (NaN/inf as null, sorted keys) as UTF-8 bytes."""
    return strict_json(obj).encode()


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ArtifactError(f"{what} must be a JSON object")
    return obj


def bundle_file_hashes(manifest: Mapping[str, Any]) -> dict[str, str]:
    """``{name: sha256}`` from a bundle manifest (values may be hex strings or {"sha256": ...})."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError("bundle manifest lists no files")
    out: dict[str, str] = {}
    for name, meta in files.items():
        digest = meta.get("sha256") if isinstance(meta, dict) else meta
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ArtifactError(f"bundle manifest has no valid sha256 for {name!r}")
        out[str(name)] = digest
    return out


@dataclass(frozen=True)
class VersionInfo:
    """What ``version.json`` says about one complete version."""

    model_name: str
    version: str
    run_id: str
    created_at: str
    data_version: str | None
    metrics: dict[str, Any]
    files: dict[str, str]  # relpath -> sha256, the bundle manifest included
    entity_fingerprint: str | None = None  # the entity's data content id (telemetry.dataset)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> VersionInfo:
        try:
            return cls(
                model_name=str(obj["model_name"]),
                version=str(obj["version"]),
                run_id=str(obj["run_id"]),
                created_at=str(obj["created_at"]),
                data_version=obj.get("data_version"),
                metrics=dict(obj.get("metrics") or {}),
                files={str(k): str(v) for k, v in dict(obj["files"]).items()},
                entity_fingerprint=obj.get("entity_fingerprint"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"version record is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class ChampionPointer:
    """The champion pointer's content plus the ETag it was read with."""

    model_name: str
    version: str
    run_id: str
    reason: str
    promoted_at: str
    generation: int
    lineage: list[str] = field(default_factory=list)
    etag: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("etag")
        return out

    @classmethod
    def from_bytes(cls, data: bytes, etag: str) -> ChampionPointer:
        obj = load_json(data, "champion pointer")
        try:
            return cls(
                model_name=str(obj["model_name"]),
                version=str(obj["version"]),
                run_id=str(obj["run_id"]),
                reason=str(obj.get("reason", "")),
                promoted_at=str(obj["promoted_at"]),
                generation=int(obj["generation"]),
                lineage=[str(v) for v in obj.get("lineage", [])],
                etag=etag,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"champion pointer is malformed: {exc!r}") from exc
