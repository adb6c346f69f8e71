"""``retrain`` on a fresh worker (a Kubernetes pod): given only a data version, it checks the
dataset out from the DVC remote, builds the windows, trains and registers the version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from amad.storage.registry import Registry
from amad.storage.store import store_from_config
from amad.telemetry import dataset, ingest, versioning
from flows.demo_steps import write_batch
from flows.retrain import retrain
from flows.runtime import load_run_config
from tests.flows.helpers import PARAMS, tiny_overrides

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_retrain_on_a_fresh_worker_needs_only_the_data_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # runs/ (windows, bundles) lands in the test's folder
    publisher = versioning.init_repo(tmp_path / "publisher", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "local", str(tmp_path / "remote")], publisher)
    cfg = load_run_config(PARAMS, tiny_overrides(publisher))
    n = cfg.data.synthetic.train_steps // 2
    versions, digests = [], []
    for i in range(2):
        batch = write_batch(cfg, tmp_path / f"b{i}.csv", start_step=i * n, n_steps=n, seed=i)
        versions.append(ingest.ingest_batch(batch, cfg, push=True).data_version)
        digests.append(dataset.tree_digest(cfg.contract.data_dir))
    worker = versioning.init_repo(tmp_path / "worker", no_scm=True)  # no data/, no cache
    shutil.copy(publisher / ".dvc" / "config", worker / ".dvc" / "config")
    overrides = tiny_overrides(worker)

    result = retrain(str(versions[0]), config_path=PARAMS, overrides=overrides)

    assert dataset.tree_digest(worker / "data") == digests[0]
    worker_cfg = load_run_config(PARAMS, overrides)
    registry = Registry(store_from_config(worker_cfg.publish), worker_cfg.publish.model_name)
    [info] = registry.list_versions()
    assert info.version == result["version"] and info.data_version == versions[0]
