"""What every flow shares: the run context, retry policy, library log routing, locks, end states.

- ``RunContext`` / ``run_context``: the config, resolved once per run (``resolve_config``) by
  the flow that starts it and passed down to every subflow and task as a small JSON dict
  (``RunContext.to_dict()``), so the whole run uses one config and no task reads
  ``params.yaml`` again. A subflow started on its own (a test, a deployment) resolves its own.

- ``STORAGE_RETRIES``: task options that retry only ``TransientStorageError`` (a
  ``retry_condition_fn``); every other failure ends the task at once.
- ``route_library_logs``: the ``amad`` logger's records reach the Prefect run logs even when
  Prefect configured logging before ``PREFECT_LOGGING_EXTRA_LOGGERS`` was set.
- ``nested_runs``: flows started inside it (subflows) send no heartbeats of their own; the
  run that started them does.
- ``model_lock``: a global concurrency limit of one slot per model (per entity), so two
  retrains of the same model never overlap (created on first use, then held strictly);
  ``fleet_locks`` takes the slots of a whole fleet in one call, and ``retrain_lock`` skips an
  entity's own slot when its parent run holds it (``RunContext.slots_held``).
- ``no_new_data``: the named Completed state a run ends in when there is nothing to do.
- ``for_entity`` / ``registry_for``: one entity's run is the same flows with the override
  ``data.entity``; its registry is ``models/<name>/entities/<entity>/`` (no entity: the model's).
- ``task_runner``: the runner the fleet fans out on (``fleet.runner``): Prefect's thread pool, or
  prefect-dask's ``DaskTaskRunner`` on a temporary ``distributed.LocalCluster`` bound to
  127.0.0.1, or on the scheduler at ``fleet.dask_address``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from typing import Any

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import Completed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from amad.config import AmadConfig, TimeoutConfig, build_config, config_to_dict, resolve_config
from amad.errors import TransientStorageError
from amad.logs import quiet_libraries
from amad.storage.registry import Registry
from amad.storage.store import store_from_config

LIBRARY_LOGGER = "amad"
NO_NEW_DATA = "NoNewData"
FLEET_LOCK_WAIT_S = 10.0  # fleet_locks: how long to wait for all slots before locking one by one
log = logging.getLogger(__name__)


def is_transient(exc: BaseException | None) -> bool:
    """True for errors worth retrying: transient storage failures, also when chained."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, TransientStorageError):
            return True
        exc = exc.__cause__
        seen += 1
    return False


def only_transient_storage_errors(task: Any, task_run: Any, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry a failed task only when it failed on transient storage."""
    data = state.data
    if not isinstance(data, BaseException):
        data = state.result(raise_on_failure=False)
    return is_transient(data if isinstance(data, BaseException) else None)


STORAGE_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 4, 10],
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": only_transient_storage_errors,
    "timeout_seconds": TimeoutConfig().storage_s,  # per attempt; see flows/limits.py
}


def route_library_logs(level: int = logging.INFO) -> None:
    """Give the ``amad`` logger Prefect's API handler (idempotent) and an INFO floor."""
    library = logging.getLogger(LIBRARY_LOGGER)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in library.handlers:
            library.addHandler(handler)
    if library.level == logging.NOTSET or library.level > level:
        library.setLevel(level)
    quiet_libraries()  # botocore/GX chatter stays below the run logs' level (amad.logs)


@contextmanager
def nested_runs() -> Iterator[None]:
    """Subflows started in this block run without a heartbeat thread of their own.

    Prefect 3.9 starts a heartbeat thread for every flow run (``flows.heartbeat_frequency``,
    180 s by default, for zombie detection) and joins it for up to 2 s when the run ends:
    about 1.2 s per subflow here, 6 of the 9 s one entity's retrain took with a tiny model
    (``benchmarks/fleet_scale.py``). A subflow runs in its parent's process, or in a Dask task
    whose loss fails the parent's task, so the top-level run's heartbeats (a deployment's, as
    the scheduled pipeline is) still tell whether the work is alive.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def load_run_config(
    config_path: str | None = "params.yaml", overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """The flow's config file plus its dotted-key overrides (``amad.config.resolve_config``).

    A path that does not exist is a ``ConfigError``; None means ``./params.yaml`` when present.
    """
    return resolve_config(config_path or None, overrides)


@dataclass(frozen=True)
class RunContext:
    """What every task of one run shares: its config, resolved once, as a JSON-safe dict.

    A dict, not the pydantic model, because Prefect records flow parameters as JSON, hashes task
    inputs for its cache and sends them to Dask workers and deployments: a plain dict round-trips
    exactly through all of them. ``run_id`` is the flow run that resolved the config.
    """

    config: dict[str, Any]
    run_id: str = "local"
    slots_held: bool = False  # the run that started this one holds the entities' retrain slots

    @classmethod
    def resolve(
        cls, config_path: str | None, overrides: Mapping[str, Any] | None = None
    ) -> RunContext:
        """The one resolution of a run: the config file plus its dotted-key overrides."""
        from prefect.runtime import flow_run

        cfg = load_run_config(config_path, overrides)
        return cls(config_to_dict(cfg), str(flow_run.get_id() or "local"))

    def cfg(self) -> AmadConfig:
        """The config (validated from the dict; no file is read, no override applied again)."""
        return AmadConfig.model_validate(self.config)

    def for_entity(self, entity: str) -> RunContext:
        """The context of one entity's run: the same config with ``data.entity`` set."""
        return replace(
            self, config=config_to_dict(build_config(self.config, {"data.entity": entity}))
        )

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "run_id": self.run_id, "slots_held": self.slots_held}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> RunContext:
        return cls(
            dict(obj["config"]), str(obj.get("run_id") or "local"), bool(obj.get("slots_held"))
        )


def run_context(
    config_path: str | None = "params.yaml",
    overrides: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> RunContext:
    """The parent's context when one was passed down, else this run's own (resolved once)."""
    return RunContext.from_dict(context) if context else RunContext.resolve(config_path, overrides)


def run_config(context: Mapping[str, Any]) -> AmadConfig:
    """The config of a task's ``context`` parameter (``RunContext.to_dict()``)."""
    return RunContext.from_dict(context).cfg()


def limit_name(model_name: str, entity: str | None = None) -> str:
    """The global concurrency limit guarding one model's (one entity's) retrains."""
    scope = model_name if entity is None else f"{model_name}--{entity}"
    return "retrain-" + re.sub(r"[^A-Za-z0-9_-]", "-", scope)


def ensure_limit(name: str, slots: int = 1) -> None:
    """Create the global concurrency limit ``name`` with ``slots`` if it does not exist."""
    # another run may create it between the read and the create inside the upsert
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, slots)


@contextmanager
def model_lock(
    model_name: str, timeout_s: float | None = None, *, entity: str | None = None
) -> Iterator[None]:
    """Hold the model's (entity's) single retrain slot for the duration of the block."""
    name = limit_name(model_name, entity)
    ensure_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True):
        yield


def retrain_lock(ctx: RunContext, timeout_s: float | None = None) -> AbstractContextManager[None]:
    """The run entity's retrain slot (``model_lock``), unless the run that started this one
    holds it already (``RunContext.slots_held``, set by ``fleet_locks``)."""
    if ctx.slots_held:
        return nullcontext()
    cfg = ctx.cfg()
    return model_lock(cfg.publish.model_name, timeout_s, entity=cfg.data.entity)


def ensure_limits(names: Sequence[str], slots: int = 1) -> None:
    """``ensure_limit`` for each of ``names`` that does not exist yet: one read per 200
    existing limits, then one upsert per missing one (once per entity, ever)."""
    existing: set[str] = set()
    with get_client(sync_client=True) as client:
        while page := client.read_global_concurrency_limits(limit=200, offset=len(existing)):
            existing |= {limit.name for limit in page}
            if len(page) < 200:
                break
    for name in sorted(set(names) - existing):
        ensure_limit(name, slots)


@contextmanager
def fleet_locks(
    model_name: str, entities: Sequence[str], wait_s: float = FLEET_LOCK_WAIT_S
) -> Iterator[bool]:
    """Hold every entity's retrain slot in one acquisition for the block; yields True.

    A fleet of n entities then costs two lock calls instead of about 4n, each a write
    transaction on the API's database. When another run holds one of the slots and it is not
    freed within ``wait_s``, yields False without holding any: each entity then takes its own
    slot (``retrain_lock``) and only the busy one waits.
    """
    names = [limit_name(model_name, entity) for entity in entities]
    if not names:
        yield False
        return
    ensure_limits(names)
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(names, occupy=1, timeout_seconds=wait_s, strict=True))
        except TimeoutError:
            log.info("a retrain slot of %d entities is busy: each locks its own", len(names))
            yield False
        else:
            yield True


def current_run_id() -> str:
    """The id of the Prefect run doing this stage: the task run when a stage runs inside a task
    (one entity of the fleet, ``pipeline.retrain_entity``), else the flow run ("local" outside
    any run). Run folders and the registry's provenance records are named by it."""
    from prefect.context import TaskRunContext
    from prefect.runtime import flow_run

    task = TaskRunContext.get()
    if task is not None:
        return str(task.task_run.id)
    return str(flow_run.get_id() or "local")


def no_new_data(message: str) -> State[Any]:
    """The Completed state a run ends in when no new data arrived (not a failure)."""
    return Completed(name=NO_NEW_DATA, message=message)


def for_entity(overrides: Mapping[str, Any] | None, entity: str) -> dict[str, Any]:
    """The overrides of one entity's run: the flow's own plus ``data.entity``."""
    return {**(overrides or {}), "data.entity": entity}


def registry_for(cfg: AmadConfig) -> Registry:
    """The registry of the run's entity (``data.entity``), else the model-wide one."""
    return Registry(store_from_config(cfg.publish), cfg.publish.model_name, entity=cfg.data.entity)


def task_runner(cfg: AmadConfig) -> TaskRunner[Any]:
    """The task runner ``fleet.runner`` names (the Dask cluster starts with the flow run)."""
    fleet = cfg.fleet
    if fleet.runner == "default":
        return ThreadPoolTaskRunner(max_workers=fleet.threads)
    from prefect_dask import DaskTaskRunner

    if fleet.dask_address:
        return DaskTaskRunner(address=fleet.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": fleet.dask_workers,
            "threads_per_worker": fleet.dask_threads_per_worker,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "env": _worker_env(),
        },
    )


def _worker_env() -> dict[str, str]:
    """``PREFECT_API_URL`` for local worker processes: this run's API, the ephemeral one too.

    Without it each worker process would start an ephemeral API of its own on the same database.
    """
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        url = server.api_url if server.running else None
    return {"PREFECT_API_URL": str(url)} if url else {}


def worker_name() -> str:
    """The Dask worker running this code (its address), or ``local`` outside Dask."""
    try:
        from distributed import get_worker
    except ImportError:  # prefect-dask not installed: only the default runner exists
        return "local"
    try:
        return str(get_worker().address)
    except ValueError:  # not inside a Dask worker
        return "local"
