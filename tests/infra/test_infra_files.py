"""infra/: prefect.yaml deployments, the Kubernetes pool templates rendered, the bucket settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prefect.utilities.templating import apply_values

from amad.config import build_config, load_profile

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
BUCKETS = INFRA / "buckets"


def _deployments() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((INFRA / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def _flow_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(
            (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "flow")
            or getattr(d, "id", "") == "flow"
            for d in node.decorator_list
        )
    }


def _render(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What a worker does: validate values against the schema, fill defaults, substitute."""
    schema = template["variables"]
    jsonschema.validate(values, schema)
    defaults = {
        k: v["default"] for k, v in schema["properties"].items() if v.get("default") is not None
    }
    return apply_values(template["job_configuration"], {**defaults, **values})


def test_prefect_yaml_declares_the_three_deployments_on_the_right_pools() -> None:
    deployments = _deployments()
    assert set(deployments) == {"nightly", "gpu", "hourly"}
    assert deployments["nightly"]["entrypoint"] == "flows/pipeline.py:pipeline"
    assert deployments["nightly"]["work_pool"]["name"] == "cpu"
    assert deployments["gpu"]["entrypoint"] == "flows/retrain.py:retrain"
    assert deployments["gpu"]["work_pool"]["name"] == "gpu"
    assert deployments["gpu"]["work_pool"]["job_variables"]["gpu_count"] == 1
    assert deployments["hourly"]["entrypoint"] == "flows/score.py:score"
    assert deployments["hourly"]["work_pool"]["name"] == "cpu"
    assert deployments["nightly"]["schedules"][0]["cron"] == "0 2 * * *"
    assert deployments["hourly"]["schedules"][0]["cron"].split()[1:] == ["*"] * 4
    assert "schedules" not in deployments["gpu"]  # started by the pipeline, never on its own
    assert deployments["nightly"]["parameters"]["retrain_deployment"] == "retrain/gpu"


def test_every_entrypoint_names_a_flow_in_the_repository() -> None:
    for name, deployment in _deployments().items():
        file, func = deployment["entrypoint"].split(":")
        assert (REPO / file).is_file(), name
        assert func in _flow_functions(REPO / file), f"{name}: {func} is not a @flow in {file}"


def test_deployment_parameters_exist_on_the_flows() -> None:
    for name, deployment in _deployments().items():
        file, func = deployment["entrypoint"].split(":")
        tree = ast.parse((REPO / file).read_text())
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func)
        accepted = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        assert set(deployment.get("parameters", {})) <= accepted, name


def test_gpu_template_renders_the_gpu_limit_selector_and_toleration() -> None:
    template = json.loads((INFRA / "k8s" / "gpu-pool.json").read_text())
    job_vars = _deployments()["gpu"]["work_pool"]["job_variables"]
    values = {
        **{k: v for k, v in job_vars.items() if k != "image"},
        "image": "registry.example.com/amad:cuda-1.0",
        "gpu_count": 2,
        "env": {"AMAD_STORE": "s3://amad-models"},
        "name": "retrain-run",
        "labels": {"app": "amad"},
    }
    config = _render(template, values)
    spec = config["job_manifest"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert container["image"] == "registry.example.com/amad:cuda-1.0"
    assert spec["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert config["job_manifest"]["metadata"]["namespace"] == "amad"
    assert "{{" not in json.dumps(config)


def test_gpu_template_rejects_a_bad_gpu_count() -> None:
    template = json.loads((INFRA / "k8s" / "gpu-pool.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        _render(template, {"image": "x", "gpu_count": 0})
    with pytest.raises(jsonschema.ValidationError):
        _render(template, {"image": "x", "gpu_count": "one"})


def test_cpu_template_renders_without_any_gpu() -> None:
    template = json.loads((INFRA / "k8s" / "cpu-pool.json").read_text())
    config = _render(template, {"image": "registry.example.com/amad:cpu-1.0"})
    spec = config["job_manifest"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in json.dumps(config)
    assert "tolerations" not in spec
    assert spec["containers"][0]["resources"]["requests"]["cpu"] == "2"


def _policy() -> dict[str, Any]:
    return json.loads((BUCKETS / "worker-policy.json").read_text())


def test_worker_policy_is_least_privilege() -> None:
    policy = _policy()
    buckets = set(json.loads((BUCKETS / "buckets.json").read_text())["buckets"])
    allowed: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
        for resource in statement["Resource"]:
            assert resource.split(":::")[1].split("/")[0] in buckets, resource
        if statement["Effect"] == "Allow":
            allowed |= set(actions)
    assert "s3:DeleteObject" not in allowed
    assert "s3:DeleteObjectVersion" not in allowed
    assert not any(a.startswith("s3:PutBucket") for a in allowed)
    denied = {a for s in policy["Statement"] if s["Effect"] == "Deny" for a in s["Action"]}
    assert {"s3:DeleteObjectVersion", "s3:PutBucketVersioning"} <= denied


def test_bucket_settings_are_accepted_by_the_s3_and_iam_apis() -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    spec = json.loads((BUCKETS / "buckets.json").read_text())
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket, settings in spec["buckets"].items():
            s3.create_bucket(Bucket=bucket)
            versioning = json.loads((BUCKETS / settings["versioning"]).read_text())
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=versioning)
            lifecycle = json.loads((BUCKETS / settings["lifecycle"]).read_text())
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
            assert not any(
                "Expiration" in r and r["Filter"].get("Prefix", "") in ("", "models/")
                for r in rules
            ), "current model versions must never expire"
        iam = boto3.client("iam", region_name="us-east-1")
        created = iam.create_policy(PolicyName="amad-worker", PolicyDocument=json.dumps(_policy()))
        assert created["Policy"]["PolicyName"] == "amad-worker"


def test_dvc_remote_example_points_at_the_data_bucket_without_secrets() -> None:
    text = (INFRA / "dvc" / "config.example").read_text()
    assert "url = s3://amad-data/dvc" in text
    assert "secret" not in text.lower().replace("aws_secret_access_key", "")
    assert "endpointurl" not in text


@pytest.mark.parametrize("image", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_images_carry_the_dvc_skeleton_but_no_dataset(image: str) -> None:
    """A pod checks out the data version it is given: it needs the remote config, not data."""
    text = (INFRA / image).read_text()
    copied = {
        src for line in text.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]
    }
    assert {".dvc/config", ".dvcignore"} <= copied
    assert not copied & {".", ".dvc", "data", "data.dvc"}
    assert "dvc config --local core.no_scm true" in text  # /opt/amad is no git checkout


def test_training_deployments_resolve_the_gpu_profile_and_share_one_window_config() -> None:
    deployments = _deployments()
    configs = {
        name: build_config(
            yaml.safe_load((REPO / "params.yaml").read_text()),
            deployments[name]["parameters"]["overrides"],
        )
        for name in ("nightly", "gpu", "hourly")
    }
    gpu_profile = load_profile("gpu")
    for name in ("nightly", "gpu"):
        assert configs[name].profile == "gpu"
        assert configs[name].model.d_model == gpu_profile["model"]["d_model"]
        assert configs[name].publish.store == "s3"
    # the window set the nightly run builds is the one the gpu worker would build
    assert configs["nightly"].windows == configs["gpu"].windows
    assert configs["hourly"].profile is None  # scoring uses the champion bundle's own config
