"""Deploy infra/prefect.yaml to a real local Prefect server and run the pipeline through workers.

The server, the ``cpu`` and ``gpu`` process pools and one worker per pool run as subprocesses on
127.0.0.1 with a private PREFECT_HOME. The deployments come from ``infra/prefect.yaml`` as
written, except that the pull step points at this checkout (the images put the code in
/opt/amad) and the schedules are created inactive. ``pipeline/nightly`` then starts
``retrain/gpu`` through ``run_deployment``, so both pools do real work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port
from tests.flows.helpers import tiny_overrides

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Prefect server on a free loopback port with pools cpu and gpu; env for its CLI."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_EXTRA_LOGGERS="amad",
    )
    with open(tmp_path / "server.log", "wb") as log:  # the child keeps its own descriptor
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    procs = [server]
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait_healthy(api + "/health", server)
        env["PREFECT_API_URL"] = api
        for pool in ("cpu", "gpu"):
            subprocess.run(
                [str(BIN / "prefect"), "work-pool", "create", pool, "--type", "process"],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        yield {"env": env, "api": api, "procs": procs, "tmp": tmp_path}
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _deploy(env: dict[str, str], tmp: Path) -> None:
    spec = yaml.safe_load((REPO / "infra" / "prefect.yaml").read_text())
    spec["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    for deployment in spec["deployments"]:
        for schedule in deployment.get("schedules", []):
            schedule["active"] = False
    path = tmp / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**env, "AMAD_IMAGE_CPU": "amad:cpu-test", "AMAD_IMAGE_CUDA": "amad:cuda-test"}
    out = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _start_worker(server: dict[str, Any], pool: str) -> None:
    with open(server["tmp"] / f"worker-{pool}.log", "wb") as log:  # the child keeps its own fd
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"],
            env=server["env"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server["procs"].append(proc)


def _client_call(server: dict[str, Any], code: str) -> Any:
    """Run a snippet against the server in a subprocess (this process stays off its API)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=server["env"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


READ_DEPLOYMENTS = """
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    print(json.dumps({f"{c.read_flow(d.flow_id).name}/{d.name}": {
        "pool": d.work_pool_name, "vars": d.job_variables,
        "limit": d.global_concurrency_limit.limit if d.global_concurrency_limit else None,
        "schedules": [s.active for s in d.schedules]} for d in c.read_deployments()}))
"""


def test_prefect_yaml_deploys_to_process_pools(prefect_server: dict[str, Any]) -> None:
    _deploy(prefect_server["env"], prefect_server["tmp"])
    found = _client_call(prefect_server, READ_DEPLOYMENTS)
    assert set(found) == {"pipeline/nightly", "retrain/gpu", "score/hourly"}
    assert found["pipeline/nightly"]["pool"] == "cpu"
    assert found["retrain/gpu"]["pool"] == "gpu"
    assert found["retrain/gpu"]["vars"]["gpu_count"] == 1
    assert found["score/hourly"]["schedules"] == [False]
    assert found["pipeline/nightly"]["limit"] == 1
    assert found["score/hourly"]["limit"] == 1


@pytest.fixture
def pipeline_inputs(tmp_path: Path) -> dict[str, Any]:
    """Two synthetic batches and a tiny, fast configuration with everything under tmp_path."""
    from flows.demo_steps import write_batch
    from flows.runtime import load_run_config

    overrides = tiny_overrides(tmp_path)
    cfg = load_run_config(str(REPO / "params.yaml"), overrides)
    n = cfg.data.synthetic.train_steps // 2
    batches = [
        str(write_batch(cfg, tmp_path / "in" / f"b{i}.csv", start_step=i * n, n_steps=n, seed=i))
        for i in range(2)
    ]
    return {
        "batches": batches,
        "config_path": str(REPO / "params.yaml"),
        "overrides": overrides,
        "retrain_deployment": "retrain/gpu",
        "incoming": None,
    }


def test_pipeline_runs_through_workers(
    prefect_server: dict[str, Any], pipeline_inputs: dict[str, Any]
) -> None:
    _deploy(prefect_server["env"], prefect_server["tmp"])
    _start_worker(prefect_server, "cpu")
    _start_worker(prefect_server, "gpu")
    params = json.dumps(pipeline_inputs)
    code = (
        "import json\n"
        "from prefect.deployments import run_deployment\n"
        "from prefect.client.orchestration import get_client\n"
        f"run = run_deployment('pipeline/nightly', parameters=json.loads({params!r}), timeout=840)\n"
        "with get_client(sync_client=True) as c:\n"
        "    runs = c.read_flow_runs()\n"
        "    out = {'state': run.state.type.value, 'name': run.state.name,\n"
        "           'runs': sorted((c.read_deployment(r.deployment_id).name if r.deployment_id\n"
        "                           else r.name, r.state.type.value) for r in runs\n"
        "                          if r.deployment_id)}\n"
        "print(json.dumps(out))\n"
    )
    result = _client_call(prefect_server, code)
    logs = {
        p.name: p.read_text(errors="replace")[-3000:]
        for p in prefect_server["tmp"].glob("worker-*.log")
    }
    assert result["state"] == "COMPLETED", (result, logs)
    assert ["gpu", "COMPLETED"] in result["runs"], result
    assert ["nightly", "COMPLETED"] in result["runs"], result
