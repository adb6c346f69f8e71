"""infra/k8s/dask-*.yaml: the Dask operator resources the fleet's retrains run on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from amad.config import build_config

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"


def _load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((K8S / name).read_text())
    assert doc["apiVersion"] == "kubernetes.dask.org/v1"
    return doc


def _worker(doc: dict[str, Any]) -> dict[str, Any]:
    [container] = doc["spec"]["worker"]["spec"]["containers"]
    return container


def test_cluster_scheduler_service_matches_the_documented_address() -> None:
    doc = _load("dask-cluster.yaml")
    assert doc["kind"] == "DaskCluster" and doc["metadata"]["namespace"] == "amad"
    service = doc["spec"]["scheduler"]["service"]
    assert service["selector"]["dask.org/cluster-name"] == doc["metadata"]["name"]
    assert {"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"} in (
        service["ports"]
    )
    address = f"tcp://{doc['metadata']['name']}-scheduler.amad.svc:8786"
    cfg = build_config({"fleet": {"runner": "dask", "dask_address": address}})
    assert cfg.fleet.dask_address == address  # what the config comment and README point at


def test_cpu_workers_run_one_task_each_with_the_worker_identity_and_no_gpu() -> None:
    doc = _load("dask-cluster.yaml")
    worker = _worker(doc)
    args = worker["args"]
    assert args[0] == "dask-worker" and args[args.index("--nthreads") + 1] == "1"
    assert doc["spec"]["worker"]["spec"]["serviceAccountName"] == "amad-worker"
    assert {e["name"] for e in worker["env"]} >= {"PREFECT_API_URL", "AMAD_STORE"}
    assert "nvidia.com/gpu" not in json.dumps(doc)


def test_gpu_worker_group_has_the_gpu_pool_placement_and_a_gpu_resource() -> None:
    doc = _load("dask-gpu-workers.yaml")
    cluster = _load("dask-cluster.yaml")
    assert doc["kind"] == "DaskWorkerGroup"
    assert doc["spec"]["cluster"] == cluster["metadata"]["name"]
    pod = doc["spec"]["worker"]["spec"]
    worker = _worker(doc)
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["args"][worker["args"].index("--resources") + 1] == "GPU=1"
    gpu_pool = json.loads((K8S / "gpu-pool.json").read_text())["variables"]["properties"]
    assert pod["nodeSelector"] == gpu_pool["node_selector"]["default"]
    assert pod["tolerations"] == gpu_pool["tolerations"]["default"]
