"""Immutable model versions in a ``Store``: publish a bundle once, verify it, read it back.

Layout for a model ``NAME`` (under ``models/NAME/entities/ENTITY/`` for one entity of a fleet)::

    models/NAME/versions/VERSION/files/<bundle files incl. manifest.json>
    models/NAME/versions/VERSION/version.json     written LAST: file hashes, run id, metrics
    models/NAME/content/<content id>.json         which version id a bundle's content was given

A version id is ``<UTC yyyymmddThhmmssZ>-<12 hex of the bundle manifest's sha256>``, so ids sort
by time. The first publish of a bundle claims its id with a create-only write of
``content/<content id>.json``, so a rerun (or a concurrent run) of ``publish_version`` on the
same bundle finds and completes (or simply returns) that one version. A version is *complete*
only when ``version.json`` exists; it is written after every file has been uploaded and read
back with matching sha256, so a publish that dies half-way leaves nothing visible to
``list_versions``/``show``/``fetch``. The champion pointer on top of these versions is
``amad.storage.registry``.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from amad.errors import ArtifactError, ConflictError, ObjectNotFoundError
from amad.files import sha256_bytes
from amad.storage.records import VersionInfo, bundle_file_hashes, json_bytes, load_json, utc_now
from amad.storage.store import Store

log = logging.getLogger(__name__)

BUNDLE_MANIFEST = "manifest.json"
VERSION_FILE = "version.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}$")


class Versions:
    """The immutable versions of one model name (and entity) in one store.

    With ``entity`` every key lives under ``models/NAME/entities/ENTITY/``: each entity of a fleet
    has its own versions, with the same guarantees (``model.scope: entity``).
    """

    def __init__(self, store: Store, model_name: str, *, entity: str | None = None) -> None:
        if not _NAME.match(model_name):
            raise ValueError(f"invalid model name {model_name!r}")
        if entity is not None and not _NAME.match(entity):
            raise ValueError(f"invalid entity id {entity!r}")
        self.store = store
        self.model_name = model_name
        self.entity = entity
        self.base = f"models/{model_name}" + (f"/entities/{entity}" if entity else "")

    def __repr__(self) -> str:
        scope = f", entity={self.entity!r}" if self.entity else ""
        return f"{type(self).__name__}({self.store.uri!r}, {self.model_name!r}{scope})"

    # -- keys --------------------------------------------------------------------------------
    def _vkey(self, version: str, rel: str = "") -> str:
        return f"{self.base}/versions/{version}/{rel}".rstrip("/")

    # -- publish -----------------------------------------------------------------------------
    def publish_version(
        self,
        bundle_dir: str | Path,
        *,
        run_id: str,
        metrics: Mapping[str, Any] | None = None,
        data_version: str | None = None,
        check: Callable[[Path], object] | None = None,
        entity_fingerprint: str | None = None,
    ) -> str:
        """Upload a bundle as an immutable version and return its id (idempotent per bundle).

        ``check`` (e.g. ``amad.detector.bundle.load_bundle``) must accept the bundle before any
        byte is uploaded; this package never imports the model, so the caller passes it.
        """
        root = Path(bundle_dir)
        manifest_bytes, files = self._read_local_bundle(root)
        if check is not None:
            check(root)
        version = self._claim_version(sha256_bytes(manifest_bytes)[:12])
        if self.store.exists(self._vkey(version, VERSION_FILE)):
            log.info("%s: bundle already published as %s", self.model_name, version)
            return version
        log.info("%s: publishing %s from %s (run %s)", self.model_name, version, root, run_id)
        for rel in sorted(files):
            data = manifest_bytes if rel == BUNDLE_MANIFEST else (root / rel).read_bytes()
            self._put_immutable(self._vkey(version, f"files/{rel}"), data, files[rel])
        self._verify_files(version, files)
        info = VersionInfo(
            model_name=self.model_name,
            version=version,
            run_id=run_id,
            created_at=utc_now().isoformat(timespec="seconds"),
            data_version=data_version,
            metrics=dict(metrics or {}),
            files=files,
            entity_fingerprint=entity_fingerprint,
        )
        try:
            self.store.put_bytes(
                self._vkey(version, VERSION_FILE), json_bytes(info.to_dict()), if_none_match=True
            )
        except ConflictError:
            log.info("%s: %s was completed concurrently", self.model_name, version)
        return version

    @staticmethod
    def _read_local_bundle(root: Path) -> tuple[bytes, dict[str, str]]:
        """Manifest bytes and ``{relpath: sha256}`` of a local bundle, checked against its files."""
        path = root / BUNDLE_MANIFEST
        if not path.is_file():
            raise ArtifactError(f"{root} has no {BUNDLE_MANIFEST}; not a bundle")
        links = sorted(p.name for p in root.rglob("*") if p.is_symlink())
        if links or root.is_symlink():
            raise ArtifactError(f"{root}: a bundle may not hold symlinks ({', '.join(links[:3])})")
        manifest_bytes = path.read_bytes()
        listed = bundle_file_hashes(load_json(manifest_bytes, str(path)))
        for rel, digest in listed.items():
            file = root / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts or not rel.strip():
                raise ArtifactError(f"{root}: manifest path {rel!r} points outside the bundle")
            if not file.is_file():
                raise ArtifactError(f"{root}: {rel!r} is listed in the manifest but missing")
            if sha256_bytes(file.read_bytes()) != digest:
                raise ArtifactError(f"{root}: {rel!r} does not match its manifest sha256")
        return manifest_bytes, {**listed, BUNDLE_MANIFEST: sha256_bytes(manifest_bytes)}

    def _claim_version(self, content_id: str) -> str:
        """The version id of this content: claimed once (If-None-Match), reused by every rerun."""
        key = f"{self.base}/content/{content_id}.json"
        try:
            data, _ = self.store.get_bytes(key)
        except ObjectNotFoundError:
            version = f"{utc_now():%Y%m%dT%H%M%SZ}-{content_id}"
            try:
                self.store.put_bytes(key, json_bytes({"version": version}), if_none_match=True)
                return version
            except ConflictError:  # a concurrent publish of the same bundle claimed it first
                data, _ = self.store.get_bytes(key)
        version = str(load_json(data, key).get("version", ""))
        if not _VERSION.match(version) or not version.endswith(content_id):
            raise ArtifactError(f"{key} is malformed")
        return version

    def _put_immutable(self, key: str, data: bytes, digest: str) -> None:
        """Write once; if the key exists (an interrupted publish), keep it only if identical."""
        try:
            self.store.put_bytes(key, data, if_none_match=True)
        except ConflictError:
            if sha256_bytes(self.store.get_bytes(key)[0]) != digest:
                log.warning("replacing damaged object %s left by an interrupted publish", key)
                self.store.put_bytes(key, data)

    def _verify_files(self, version: str, files: Mapping[str, str]) -> None:
        """Read every file of a version back and compare sha256; ``ArtifactError`` on mismatch."""
        for rel, digest in sorted(files.items()):
            try:
                data, _ = self.store.get_bytes(self._vkey(version, f"files/{rel}"))
            except ObjectNotFoundError as exc:
                raise ArtifactError(f"{self.model_name} {version}: {rel!r} is missing") from exc
            if sha256_bytes(data) != digest:
                raise ArtifactError(
                    f"{self.model_name} {version}: {rel!r} does not match its sha256 (tampered?)"
                )

    # -- read --------------------------------------------------------------------------------
    def _version_ids(self, *, complete_only: bool = True) -> list[str]:
        prefix = f"{self.base}/versions/"
        ids: set[str] = set()
        complete: set[str] = set()
        for key in self.store.list(prefix):
            version, _, rest = key[len(prefix) :].partition("/")
            if _VERSION.match(version):
                ids.add(version)
                if rest == VERSION_FILE:
                    complete.add(version)
        return sorted(complete if complete_only else ids)

    def list_versions(self) -> list[VersionInfo]:
        """Complete versions, oldest first (half-published ones are invisible)."""
        return [self.show(v) for v in self._version_ids()]

    def show(self, version: str) -> VersionInfo:
        """The record of a complete version; ``ArtifactError`` if absent or incomplete."""
        if not _VERSION.match(version):
            raise ArtifactError(f"{version!r} is not a version id")
        try:
            data, _ = self.store.get_bytes(self._vkey(version, VERSION_FILE))
        except ObjectNotFoundError as exc:
            raise ArtifactError(f"{self.model_name} has no complete version {version}") from exc
        info = VersionInfo.from_dict(load_json(data, f"{version}/{VERSION_FILE}"))
        if info.version != version or info.model_name != self.model_name:
            raise ArtifactError(f"{version}/{VERSION_FILE} describes another version")
        return info

    def verify(self, version: str) -> VersionInfo:
        """Read every file back and check it against the record and the bundle manifest."""
        info = self.show(version)
        self._verify_files(version, info.files)
        manifest_bytes, _ = self.store.get_bytes(self._vkey(version, f"files/{BUNDLE_MANIFEST}"))
        listed = bundle_file_hashes(load_json(manifest_bytes, BUNDLE_MANIFEST))
        if any(info.files.get(rel) != digest for rel, digest in listed.items()):
            raise ArtifactError(f"{self.model_name} {version}: record and manifest disagree")
        return info

    def fetch(self, version: str, dest: str | Path) -> Path:
        """Download a verified version into ``dest`` (bundle files + manifest only)."""
        info = self.show(version)
        out = Path(dest)
        tmp = out.with_name(f".{out.name}.fetch-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            for rel, digest in sorted(info.files.items()):
                data, _ = self.store.get_bytes(self._vkey(version, f"files/{rel}"))
                if sha256_bytes(data) != digest:
                    raise ArtifactError(
                        f"{self.model_name} {version}: {rel!r} does not match its sha256 (tampered?)"
                    )
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            _clear_previous_fetch(out, set(info.files))
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("%s: fetched %s to %s", self.model_name, version, out)
        return out


def _clear_previous_fetch(out: Path, names: set[str]) -> None:
    """Remove ``out`` if it only holds bundle files (an earlier fetch); refuse anything else."""
    if not out.exists():
        return
    held = {p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()}
    if not out.is_dir() or not held <= names:
        raise ArtifactError(f"{out} exists and holds other files; not overwriting it")
    shutil.rmtree(out)
