"""Data versioning with DVC: record the dataset folder in ``data.dvc``, push and pull it.

Calls go to the ``dvc`` command installed next to the running interpreter (the DVC Python API
is not a stable interface), in the repository root. The data version is the md5 DVC records
for the folder in ``data.dvc`` (a ``.dir`` hash). Remotes come from ``.dvc/config``: the
committed default is a local folder; an S3 remote takes its endpoint and keys from the
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), so none
is ever committed. Failures become typed errors: ``DataError`` for a missing repository or
dataset, ``TransientStorageError`` when the remote cannot be reached, ``StorageError`` else.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from amad.errors import DataError, StorageError, TransientStorageError

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
    """Run ``dvc <args>`` in ``root``; stdout on success, a typed error otherwise."""
    cmd = [dvc_executable(), *args]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATE_CHECK": "1"}
    log.debug("running %s in %s", " ".join(cmd), root)
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return proc.stdout
    tail = (proc.stderr or proc.stdout).strip()[-1500:]
    message = f"dvc {' '.join(args)} failed (exit {proc.returncode}): {tail}"
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
        rel = rel.resolve().relative_to(root.resolve())
    return root / f"{rel.as_posix()}.dvc"


def data_version(root: str | Path, data_dir: str | Path = "data") -> str | None:
    """The md5 ``<data_dir>.dvc`` records for the dataset folder, or None if untracked."""
    path = _dvc_file(Path(root), data_dir)
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
    run_dvc(["add", "--quiet", rel.as_posix()], repo)
    version = data_version(repo, rel)
    if version is None:
        raise DataError(f"dvc add did not write {rel}.dvc")
    log.info("data version %s recorded in %s.dvc", version, rel.as_posix())
    return version


def push(root: str | Path, data_dir: str | Path = "data", *, remote: str | None = None) -> None:
    """Upload the recorded data version to ``remote`` (default: the repository's default)."""
    target = _dvc_file(Path(root), data_dir).name
    run_dvc(["push", "--quiet", *(["-r", remote] if remote else []), target], root, remote_op=True)


def pull(root: str | Path, data_dir: str | Path = "data", *, remote: str | None = None) -> None:
    """Download and check out the data version ``data.dvc`` records."""
    target = _dvc_file(Path(root), data_dir).name
    run_dvc(["pull", "--quiet", *(["-r", remote] if remote else []), target], root, remote_op=True)
