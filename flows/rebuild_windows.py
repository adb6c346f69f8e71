"""``rebuild_windows``: the window sets (train, validation, evaluation) of one data version.

The task is cached by data version and window parameters (``window_cache_key``, the library's
``stages.windows_key``): an unchanged version reuses its windows without touching the data. The
library writes the window set under a folder with that key, so a hit and a rebuild agree. On a
worker that does not hold the version (a fresh pod), the library checks it out from the DVC
remote first; an unreachable remote is a ``TransientStorageError``, which the task retries.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from prefect import flow, task
from prefect.context import TaskRunContext

from amad import stages
from flows.runtime import STORAGE_RETRIES, route_library_logs, run_config, run_context


def window_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """The library's window-set key (data version + window parameters) and where it lives.

    A cached URI is only reused while its folder exists: when it is gone (a fresh checkout, a
    cleaned ``runs/``), the key changes and the window set is rebuilt.
    """
    key = stages.windows_key(run_config(parameters["context"]), parameters["data_version"])
    folder = (stages.WINDOWS_ROOT / key).resolve()
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    present = "ok" if folder.is_dir() else f"missing-{uuid.uuid4().hex[:8]}"
    return f"windows-{key}-{where}-{present}"


@task(
    name="build-window-set", cache_key_fn=window_cache_key, persist_result=True, **STORAGE_RETRIES
)
def build_window_set(data_version: str, context: dict[str, Any]) -> str:
    """Build (or reuse) the window set of ``data_version``; returns its URI."""
    return str(stages.windows(run_config(context), data_version=data_version))


@flow(name="rebuild-windows")
def rebuild_windows(
    data_version: str,
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    """The window set URI for ``data_version`` (cached per version and window parameters).

    ``context``: the parent run's; without it the config is resolved from the other two.
    """
    route_library_logs()
    return build_window_set(data_version, run_context(config_path, overrides, context).to_dict())
