"""``rebuild_windows``: the window sets (train, validation, evaluation) of one data version.

The task is cached by data version and window parameters (``window_cache_key``): an unchanged
version reuses its windows without touching the data. The library writes the window set under a
folder keyed the same way, so a cache hit and a rebuild give the same URI.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from prefect import flow, task
from prefect.context import TaskRunContext

from amad import stages
from flows.runtime import STORAGE_RETRIES, load_run_config, route_library_logs


def window_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Data version + resolved window parameters (+ the config file, which locates the data)."""
    cfg = load_run_config(parameters.get("config_path"), parameters.get("overrides"))
    key = {
        "data_version": parameters["data_version"],
        "windows": cfg.windows.model_dump(mode="json"),
        "data_dir": cfg.contract.data_dir,
        "eval_fraction": cfg.contract.eval_fraction,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return f"windows-{digest}"


@task(
    name="build-window-set", cache_key_fn=window_cache_key, persist_result=True, **STORAGE_RETRIES
)
def build_window_set(
    data_version: str, config_path: str | None, overrides: dict[str, Any] | None
) -> str:
    """Build (or reuse) the window set of ``data_version``; returns its URI."""
    cfg = load_run_config(config_path, overrides)
    return str(stages.windows(cfg, data_version=data_version))


@flow(name="rebuild-windows")
def rebuild_windows(
    data_version: str,
    config_path: str | None = "params.yaml",
    overrides: dict[str, Any] | None = None,
) -> str:
    """The window set URI for ``data_version`` (cached per version and window parameters)."""
    route_library_logs()
    return build_window_set(data_version, config_path, overrides)
