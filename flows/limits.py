"""Time limits on work that can hang: training, deployment runs, storage (``timeouts.*``).

Defaults (``amad.config.TimeoutConfig``, seconds; override like any key, e.g.
``timeouts.train_s=600``):

===============  ======  =================================================================
``train_s``      3600    one ``train-bundle`` task (fit on the window set)
``deployment_s`` 7200    waiting for a deployment run (the retrain on the GPU pool)
``storage_s``    300     one storage task (fetch, upload, publish, list); S3 requests also
                         have their own connect/read timeouts (``amad.storage.s3``)
===============  ======  =================================================================

A task or flow past its limit ends in Prefect's Failed state named ``TimedOut``. A deployment
run still not final at its limit is cancelled and :func:`run_deployment_within` raises
``amad.errors.TimedOutError`` (a ``TimeoutError``), so a hung GPU run cannot block the nightly
pipeline. ``storage_s`` is applied when the storage tasks are defined (from the default), the
other two per run from the run's configuration.

Tasks that run in a worker thread (each entity of the fleet runs on the thread pool) get their
limit from Prefect's watcher thread, which stops the task at its next Python step: a blocking
call finishes first. Prefect warns about that on every such task run; here it is expected (S3
requests have their own socket timeouts, training steps are short), so importing this module
routes that one message to DEBUG on ``prefect.task_runs`` (``ThreadTimeoutNotice``).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from amad.config import AmadConfig, TimeoutConfig
from amad.errors import TimedOutError

log = logging.getLogger(__name__)

STORAGE_TIMEOUT_S = TimeoutConfig().storage_s
T = TypeVar("T")
TASK_RUN_LOGGER = "prefect.task_runs"


class ThreadTimeoutNotice(logging.Filter):
    """Demote Prefect's "timeout ... in a worker thread" warning to DEBUG (see the module):
    it fires for every timed task on the fleet's thread pool and says nothing a run can act on.
    """

    MARK = "Timeouts in worker threads cannot"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or self.MARK not in str(record.msg):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_thread_timeout_notice() -> None:
    """Install ``ThreadTimeoutNotice`` on Prefect's task-run logger (idempotent)."""
    logger = logging.getLogger(TASK_RUN_LOGGER)
    if not any(isinstance(f, ThreadTimeoutNotice) for f in logger.filters):
        logger.addFilter(ThreadTimeoutNotice())


quiet_thread_timeout_notice()


def train_limited(task: T, cfg: AmadConfig) -> T:
    """``task`` with ``timeout_seconds = timeouts.train_s`` of this run's config."""
    return task.with_options(timeout_seconds=cfg.timeouts.train_s)  # type: ignore[attr-defined]


def run_deployment_within(
    name: str, parameters: dict[str, Any], timeout_s: float, **kwargs: Any
) -> FlowRun:
    """Run a deployment and wait at most ``timeout_s``; past it, cancel the run and raise
    ``TimedOutError``. Returns the final flow run otherwise (completed or not)."""
    child: FlowRun = run_deployment(name, parameters=parameters, timeout=timeout_s, **kwargs)  # type: ignore[assignment]
    if child.state is not None and child.state.is_final():
        return child
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(child.id, Cancelling(message=f"timed out after {timeout_s}s"),
                                  force=True)  # fmt: skip
    log.warning("deployment %s run %s not done after %ss: cancelled", name, child.id, timeout_s)
    raise TimedOutError(
        f"deployment {name} run {child.id} did not finish within {timeout_s}s "
        f"(timeouts.deployment_s); it was cancelled"
    )
