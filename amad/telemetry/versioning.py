"""Data versioning with DVC: record the dataset folder in ``data.dvc``, push and pull it.

Calls go to the ``dvc`` command installed next to the running interpreter (the DVC Python API
is not a stable interface), in the repository root. The data version is the md5 DVC records
for the folder in ``data.dvc`` (a ``.dir`` hash). Remotes come from ``.dvc/config``: the
committed default is a local folder; an S3 remote takes its endpoint and keys from the
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), so none
is ever committed. Failures become typed errors: ``DataError`` for a missing repository or
dataset, ``TransientStorageError`` when the remote cannot be reached, ``StorageError`` else.

``checkout_version`` puts a given data version into the dataset folder on any worker (a fresh
pod with only the repository skeleton): it writes the ``.dvc`` record for that md5, fetches the
objects the cache lacks from the remote and checks them out, then verifies the folder against
the record. It refuses (``DataError``) to replace a folder holding data the DVC cache does not
have (an ingest not yet ``dvc add``-ed, an interrupted one), and leaves the record and the folder
as they were when the version cannot be had (``DatasetNotFoundError`` for a version neither in
the cache nor on the remote).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from amad.config import AmadConfig
from amad.errors import (
    AmadError,
    BusyError,
    DataError,
    DatasetNotFoundError,
    StorageError,
    TransientStorageError,
)
from amad.files import atomic_write
from amad.telemetry.dataset import STAGING

log = logging.getLogger(__name__)

_TRANSIENT_HINTS = (
    "connection refused",
    "could not connect",
    "timed out",
    "timeout",
    "temporarily unavailable",
    "connect timeout",
    "endpoint url",
    "503",
    "502",
)


_LOCK_HINT = "unable to acquire lock"
_NO_SPACE = "no space left on device"
_LOCK_RETRIES = 5


def dvc_executable() -> str:
    """``dvc`` next to ``sys.executable``, else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    if local.is_file():
        return str(local)
    found = shutil.which("dvc")
    if not found:
        raise DataError("the dvc command is not installed (pip install 'dvc[s3]')")
    return found


def run_dvc(args: list[str], root: str | Path, *, remote_op: bool = False) -> str:
    """Run ``dvc <args>`` in ``root``; stdout on success, a typed error otherwise.

    Callers leave out ``--quiet``: it also silences the error text this classification reads.
    """
    cmd = [dvc_executable(), *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATE_CHECK": "1"}
    log.debug("running %s in %s", " ".join(cmd), root)
    for attempt in range(_LOCK_RETRIES + 1):
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        if _LOCK_HINT not in tail.lower():
            break
        if attempt == _LOCK_RETRIES:  # another dvc process (a repro, a second checkout) holds it
            raise BusyError(f"dvc {' '.join(args)}: the DVC repository stayed locked: {tail}")
        time.sleep(0.5 * 2**attempt)
    message = f"dvc {' '.join(args)} failed (exit {proc.returncode}): {tail}"
    if _NO_SPACE in tail.lower():  # the machine, not the data: exit 1 like any full disk
        raise OSError(errno.ENOSPC, f"{message.splitlines()[0]} (free space and rerun: the "
                      "retry finishes the version)")  # fmt: skip
    if remote_op and any(h in tail.lower() for h in _TRANSIENT_HINTS):
        raise TransientStorageError(message)
    if remote_op:
        raise StorageError(message)
    raise DataError(message)


def find_repo(start: str | Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``.dvc`` directory."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def init_repo(root: str | Path, *, no_scm: bool = False) -> Path:
    """``dvc init`` in ``root`` unless it is a DVC repository already."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".dvc").is_dir():
        run_dvc(["init", "--quiet", *(["--no-scm"] if no_scm else [])], path)
    return path


def _dvc_file(root: Path, data_dir: str | Path) -> Path:
    rel = Path(data_dir)
    if rel.is_absolute():
        try:
            rel = rel.resolve().relative_to(root.resolve())
        except ValueError as exc:
            raise DataError(
                f"the dataset {data_dir} is not inside the DVC repository {root}"
            ) from exc
    return root / f"{rel.as_posix()}.dvc"


def data_version(root: str | Path, data_dir: str | Path = "data") -> str | None:
    """The md5 ``<data_dir>.dvc`` records for the dataset folder, or None if untracked."""
    return _recorded_md5(_dvc_file(Path(root), data_dir))


def _recorded_md5(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        outs = yaml.safe_load(path.read_text())["outs"]
        return str(outs[0]["md5"]).removesuffix(".dir")
    except (KeyError, IndexError, TypeError, yaml.YAMLError) as exc:
        raise DataError(f"{path} is not a DVC file with one output: {exc}") from exc


def commit(root: str | Path, data_dir: str | Path = "data") -> str:
    """``dvc add`` the dataset folder (a no-op when unchanged); the new data version."""
    repo = Path(root)
    if not (repo / ".dvc").is_dir():
        raise DataError(f"{repo} is not a DVC repository (run `dvc init`)")
    rel = Path(data_dir)
    if rel.is_absolute():
        rel = rel.resolve().relative_to(repo.resolve())
    if not (repo / rel).is_dir():
        raise DataError(f"no dataset folder at {repo / rel}")
    run_dvc(["add", rel.as_posix()], repo)
    version = data_version(repo, rel)
    if version is None:
        raise DataError(f"dvc add did not write {rel}.dvc")
    state = _status(repo, _dvc_file(repo, rel))
    if state is not None:  # e.g. a full disk inside dvc add: the record names a version the
        raise DataError(  # cache does not hold, which no worker could check out
            f"dvc add left {rel.as_posix()} {state}: version {version} is not in the DVC cache"
        )
    log.info("data version %s recorded in %s.dvc", version, rel.as_posix())
    return version


def push(root: str | Path, data_dir: str | Path = "data", *, remote: str | None = None) -> None:
    """Upload the recorded data version to ``remote`` (default: the repository's default)."""
    target = _dvc_file(Path(root), data_dir).name
    run_dvc(["push", *(["-r", remote] if remote else []), target], root, remote_op=True)


def pull(root: str | Path, data_dir: str | Path = "data", *, remote: str | None = None) -> None:
    """Download and check out the data version ``data.dvc`` records."""
    target = _dvc_file(Path(root), data_dir).name
    run_dvc(["pull", *(["-r", remote] if remote else []), target], root, remote_op=True)


# --------------------------------------------------------------------------- checkout a version

_MD5 = re.compile(r"[0-9a-f]{32}")


def _as_md5(version: str) -> str:
    md5 = version.strip().lower().removesuffix(".dir")
    if _MD5.fullmatch(md5):
        return md5
    hint = ""
    if md5.startswith("fp-"):
        hint = " (an fp- version fingerprints a dataset outside DVC: it cannot be checked out)"
    raise DataError(f"{version!r} is not a DVC data version (the md5 data.dvc records){hint}")


def _target(repo: Path, dvc_file: Path) -> str:
    return dvc_file.relative_to(repo).as_posix()


def _status(repo: Path, dvc_file: Path) -> str | None:
    """The dataset folder against its record: None in sync, else DVC's word for the difference
    (``deleted``, ``modified``, ``not in cache``, ...)."""
    out = run_dvc(["status", "--json", _target(repo, dvc_file)], repo)
    try:
        report = json.loads(out or "{}")
    except json.JSONDecodeError as exc:
        raise DataError(f"dvc status printed no JSON: {out[:200]!r}") from exc
    states = sorted(
        str(state)
        for entries in report.values()
        for entry in entries
        if isinstance(entry, dict)
        for state in entry.get("changed outs", {}).values()
    )
    return ", ".join(states) or None


def _holds_data(data_dir: Path) -> bool:
    if not data_dir.is_dir():
        return False
    return any(
        p.is_file() for p in data_dir.rglob("*") if STAGING not in p.relative_to(data_dir).parts
    )


def _in_sync_or_refuse(repo: Path, data_dir: Path, dvc_file: Path, md5: str) -> bool:
    """True when the folder matches its record; DataError when replacing it could lose data."""
    staging = data_dir / STAGING
    refuse = f"refusing to check out data version {md5} over {data_dir}"
    if staging.is_dir() and any(p.is_dir() for p in staging.iterdir()):  # not the lock
        raise DataError(f"{refuse}: an interrupted ingest is staged in {staging} "
                        "(run `amad ingest` to finish it, then version the dataset)")  # fmt: skip
    if not _holds_data(data_dir):
        return False
    if not dvc_file.is_file():
        raise DataError(f"{refuse}: it holds data no {dvc_file.name} records (`dvc add` it first)")
    state = _status(repo, dvc_file)
    if state is None:
        return True
    raise DataError(f"{refuse}: it has uncommitted dataset changes ({state} against "
                    f"{dvc_file.name}); record them (`dvc add`, push) or remove them first")  # fmt: skip


def _write_record(dvc_file: Path, md5: str, name: str) -> None:
    """DVC's record of a directory output (size and nfiles are optional metadata)."""
    record = {"outs": [{"md5": f"{md5}.dir", "hash": "md5", "path": name}]}
    atomic_write(dvc_file, yaml.safe_dump(record, sort_keys=False))


def _fetch_and_checkout(repo: Path, dvc_file: Path, md5: str, remote: str | None) -> None:
    target = _target(repo, dvc_file)
    run_dvc(["fetch", *(["-r", remote] if remote else []), target], repo, remote_op=True)
    if _status(repo, dvc_file) == "not in cache":  # dvc fetch only warns about missing objects
        raise DatasetNotFoundError(
            f"data version {md5} is neither in the DVC cache nor on the remote "
            f"{remote or '(the default)'}: was it pushed?"
        )
    run_dvc(["checkout", target], repo)
    state = _status(repo, dvc_file)
    if state is not None or _recorded_md5(dvc_file) != md5:
        raise DataError(f"after checkout the dataset does not match version {md5} ({state})")


def _restore(repo: Path, dvc_file: Path, previous: str | None, *, was_in_sync: bool) -> None:
    if previous is None:
        dvc_file.unlink(missing_ok=True)
        return
    dvc_file.write_text(previous)
    if was_in_sync:  # the folder may have been touched: put the old version back (it is cached)
        try:
            run_dvc(["checkout", _target(repo, dvc_file)], repo)
        except DataError as exc:
            log.error("could not restore the previous dataset version: %s", exc)


def checkout_version(
    data_version: str, cfg: AmadConfig, *, repo_dir: str | Path | None = None
) -> Path:
    """Make the dataset folder hold exactly ``data_version`` (a DVC md5); returns its path.

    A no-op when it already does. Objects missing from the DVC cache come from the remote
    (``contract.dvc_remote``, else the repository's default). See the module doc for refusals.
    """
    md5 = _as_md5(data_version)
    data_dir = Path(cfg.contract.data_dir).resolve()
    repo = Path(repo_dir).resolve() if repo_dir is not None else find_repo(data_dir.parent)
    if repo is None or not (repo / ".dvc").is_dir():
        raise DataError(f"no DVC repository holds {data_dir}: cannot check out version {md5}")
    dvc_file = _dvc_file(repo, data_dir)
    in_sync = _in_sync_or_refuse(repo, data_dir, dvc_file, md5)
    previous = dvc_file.read_text() if dvc_file.is_file() else None
    previous_md5 = _recorded_md5(dvc_file)
    if in_sync and previous_md5 == md5:
        log.info("data version %s is already checked out in %s", md5, data_dir)
        return data_dir
    _write_record(dvc_file, md5, data_dir.name)
    try:
        _fetch_and_checkout(repo, dvc_file, md5, cfg.contract.dvc_remote)
    except AmadError:
        _restore(repo, dvc_file, previous, was_in_sync=in_sync)
        raise
    if in_sync:
        log.info("data version %s left the folder; it stays in the DVC cache", previous_md5)
    log.info("data version %s checked out in %s", md5, data_dir)
    return data_dir
