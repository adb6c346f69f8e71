"""``make demo``: the whole retraining loop on a laptop, against a real local S3 server.

Starts the local stack (SeaweedFS on 127.0.0.1, buckets with versioning), writes synthetic
telemetry for a fleet of three entities (``flows.demo_steps.FLEET``), ingests their batches (one
entity's extra batch deliberately broken, which is quarantined with its report while the others
go on), trains and decides per entity through the pipeline's fan-out (``fleet.entities``),
ingests newer data, retrains and runs champion/challenger per entity, starts a webhook receiver
on 127.0.0.1 and registers it as the alert notification block, scores a fresh fleet batch with
each entity's champion, waits (bounded) for the notifications, prints each entity's registry
and a per-entity summary, and stops the receiver and the stack whatever happens. Flows run on
Prefect's ephemeral API with all state under ``--state-dir``.

    python -m flows.demo [--state-dir runs/demo] [--keep-state] [--no-pca-gate] [--verbose]

Every run starts from an empty state folder (a stack left behind by a killed run is stopped
first) unless ``--keep-state``, so ``make demo`` can be repeated. The first champion of each
entity must beat PCA on the evaluation window, as ``params.yaml`` has it (``promote``);
``--no-pca-gate`` promotes it without that comparison.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STEPS = 8
DVC_REMOTE = "s3://amad-data/dvc"


def _prefect_env(state: Path, verbose: bool) -> None:
    """Prefect settings for an offline, self-contained run; must precede importing prefect."""
    os.environ["PREFECT_HOME"] = str(state / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = "amad"
    os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"  # stack logs, no run
    os.environ.pop("PREFECT_API_URL", None)  # the ephemeral API, not someone's server
    if not verbose:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL"] = "WARNING"
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"] = "WARNING"


class Progress:
    """Numbered, timed progress lines on stdout."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.step = 0

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.step += 1
        t0 = time.perf_counter()
        print(f"[{self.step}/{STEPS}] {title} ...", flush=True)
        yield
        print(f"      done in {time.perf_counter() - t0:.1f} s", flush=True)

    def note(self, text: str) -> None:
        print(f"      {text}", flush=True)

    def total(self) -> float:
        return time.perf_counter() - self.started


class _Throttle(logging.Filter):
    """Pass a record at most every ``every_s`` seconds, and always the last word of a fit."""

    def __init__(self, every_s: float) -> None:
        super().__init__()
        self.every_s, self.last = every_s, -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if "stopped early" in record.getMessage() or now - self.last >= self.every_s:
            self.last = now
            return True
        return False


def show_training_progress(every_s: float = 15.0) -> logging.Handler:
    """Training's per-epoch lines (loss, windows/s, ETA; ``amad.detector.train``) on stdout at
    most every ``every_s`` seconds, while Prefect's own console stays at WARNING: long fits
    are never silent. Returns the handler (so a caller may remove it)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("      training: %(message)s"))
    handler.setLevel(logging.INFO)
    handler.addFilter(_Throttle(every_s))
    train_log = logging.getLogger("amad.detector.train")
    train_log.setLevel(logging.INFO)
    train_log.addHandler(handler)
    return handler


def _load_stack_env(env_file: Path) -> None:
    """Export the stack's S3 endpoint and generated keys into this process."""
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line.removeprefix("export ").split("=", 1)
            os.environ[key] = value


def _overrides(workspace: Path, pca_gate: bool) -> dict[str, Any]:
    """The demo's deviations from params.yaml: registry in the stack's S3 bucket, data in the
    workspace, the fleet (entities one after another on the default runner), and (only with
    ``--no-pca-gate``) no PCA gate for the first champion."""
    from flows.demo_steps import FLEET

    gate = {} if pca_gate else {"promote.require_beats_pca": False}
    return {
        **gate,
        "fleet.entities": list(FLEET),
        "fleet.runner": "default",
        "publish.store": "s3",
        "contract.data_dir": str(workspace / "data"),
        "contract.quarantine_dir": str(workspace / "quarantine"),
        "contract.reports_dir": str(workspace / "validation"),
    }


def _workspace(workspace: Path) -> None:
    """A DVC repository (no git) whose default remote is the stack's ``amad-data`` bucket."""
    from amad.telemetry import versioning

    workspace.mkdir(parents=True, exist_ok=True)
    os.chdir(workspace)  # runs/ (window sets, bundles, evaluations) lands here
    versioning.init_repo(workspace, no_scm=True)
    versioning.run_dvc(["remote", "add", "--default", "--force", "storage", DVC_REMOTE], workspace)


def _run(state: Path, progress: Progress, *, pca_gate: bool, verbose: bool = False) -> int:
    from amad.devstack.stack import stack_down, stack_up

    stack_dir = state / "stack"
    workspace = state / "workspace"
    try:
        with progress("Starting the local stack (SeaweedFS S3 on 127.0.0.1)"):
            status = stack_up(stack_dir)
            _load_stack_env(Path(status["env_file"]))
            progress.note(f"S3 endpoint {status['s3']['endpoint']}, buckets with versioning")
        with progress("Preparing the workspace (DVC repository, remote in the amad-data bucket)"):
            _workspace(workspace)
        from flows import demo_steps  # imports prefect, which sets up its logging

        if not verbose:
            show_training_progress()
        return demo_steps.run_loop(
            workspace,
            config_path=str(REPO / "params.yaml"),
            overrides=_overrides(workspace, pca_gate),
            progress=progress,
        )
    finally:
        stopped = stack_down(stack_dir)
        print(f"Stopped the local stack ({', '.join(stopped) or 'nothing was running'}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--state-dir", default="runs/demo", help="all demo state (default runs/demo)"
    )
    parser.add_argument(
        "--keep-state", action="store_true", help="reuse the state dir instead of starting empty"
    )
    parser.add_argument("--verbose", action="store_true", help="show Prefect's INFO logs")
    parser.add_argument(
        "--no-pca-gate",
        dest="pca_gate",
        action="store_false",
        help="promote the first model without requiring that it beats PCA (default: required)",
    )
    args = parser.parse_args(argv)
    state = Path(args.state_dir).resolve()
    if not args.keep_state and state.exists():
        from amad.devstack.stack import stack_down

        stack_down(state / "stack")  # only what an earlier demo started there, if still running
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    _prefect_env(state, args.verbose)
    progress = Progress()
    code = _run(state, progress, pca_gate=args.pca_gate, verbose=args.verbose)
    print(f"Demo finished in {progress.total():.0f} s (state in {state}).")
    return code


if __name__ == "__main__":
    sys.exit(main())
