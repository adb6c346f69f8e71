"""Checking out a data version by its md5 on a fresh worker (a local DVC remote in a temp dir).

A publisher workspace ingests two batches, recording and pushing a data version after each; a
second workspace holding only the DVC skeleton (no ``data/``, no cache) then checks out either
version by md5 and must hold exactly the published files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from amad import stages
from amad.config import AmadConfig
from amad.errors import DataError, DatasetNotFoundError
from amad.series.synthetic import generate, to_frame
from amad.telemetry import dataset, versioning
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from tests.unit.helpers import small_contract_config


def add_batch(cfg: AmadConfig, b: int, n: int = 200) -> None:
    series = generate(cfg.data.synthetic, n_steps=n, seed=1, start_step=b * n)
    frame = to_frame(series, entity="e1", cadence_s=60, columns=cfg.contract.columns,
                     start=pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=b * n))  # fmt: skip
    c = cfg.contract
    source = Path(c.reports_dir).parent / f"b{b}.csv"
    source.write_bytes(to_csv_bytes(frame))
    report = ingest([source], c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
    assert [o.status for o in report.outcomes] == ["accepted"]


@dataclass(frozen=True)
class Published:
    repo: Path
    versions: list[str]
    digests: list[str]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("publisher")
    repo = versioning.init_repo(root / "repo", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "local", str(root / "remote")], repo)
    cfg = small_contract_config(repo)
    versions, digests = [], []
    for b in range(2):
        add_batch(cfg, b)
        versions.append(versioning.commit(repo, repo / "data"))
        versioning.push(repo, repo / "data")
        digests.append(dataset.tree_digest(repo / "data"))
    assert versions[0] != versions[1]
    return Published(repo, versions, digests)


@pytest.fixture
def worker(tmp_path: Path, published: Published) -> AmadConfig:
    """A fresh workspace: the DVC skeleton and its remote, no dataset, no cache."""
    repo = versioning.init_repo(tmp_path / "worker", no_scm=True)
    shutil.copy(published.repo / ".dvc" / "config", repo / ".dvc" / "config")
    return small_contract_config(repo)


def data_dir(cfg: AmadConfig) -> Path:
    return Path(cfg.contract.data_dir)


def test_a_fresh_worker_checks_out_each_version_by_md5(
    worker: AmadConfig, published: Published
) -> None:
    v1, v2 = published.versions
    assert versioning.checkout_version(v1, worker) == data_dir(worker).resolve()
    assert dataset.tree_digest(data_dir(worker)) == published.digests[0]
    assert versioning.data_version(data_dir(worker).parent) == v1

    versioning.checkout_version(f"{v2}.dir", worker)
    assert dataset.tree_digest(data_dir(worker)) == published.digests[1]
    versioning.checkout_version(v1, worker)  # back again, from the cache
    assert dataset.tree_digest(data_dir(worker)) == published.digests[0]

    record = data_dir(worker).parent / "data.dvc"
    stamp = record.stat().st_mtime_ns
    versioning.checkout_version(v1, worker)  # idempotent: nothing rewritten
    assert record.stat().st_mtime_ns == stamp


def test_uncommitted_dataset_changes_are_never_replaced(
    worker: AmadConfig, published: Published
) -> None:
    v1, v2 = published.versions
    versioning.checkout_version(v1, worker)
    extra = data_dir(worker) / "batches" / "not-yet-added.json"
    extra.write_text("{}\n")
    with pytest.raises(DataError, match="uncommitted dataset changes"):
        versioning.checkout_version(v2, worker)
    assert extra.read_text() == "{}\n"
    assert versioning.data_version(data_dir(worker).parent) == v1

    extra.unlink()
    staged = data_dir(worker) / dataset.STAGING / "abc"
    staged.mkdir(parents=True)
    with pytest.raises(DataError, match="interrupted ingest"):
        versioning.checkout_version(v2, worker)
    assert dataset.tree_digest(data_dir(worker)) == published.digests[0]


def test_unknown_versions_fail_clearly_and_change_nothing(
    worker: AmadConfig, published: Published
) -> None:
    v1 = published.versions[0]
    versioning.checkout_version(v1, worker)
    with pytest.raises(DatasetNotFoundError, match="neither in the DVC cache nor on the remote"):
        versioning.checkout_version("0" * 32, worker)
    assert versioning.data_version(data_dir(worker).parent) == v1
    assert dataset.tree_digest(data_dir(worker)) == published.digests[0]
    with pytest.raises(DataError, match="not a DVC data version"):
        versioning.checkout_version("fp-1234", worker)
    with pytest.raises(DataError, match="not inside the DVC repository"):
        versioning.checkout_version(v1, worker, repo_dir=published.repo)


def test_an_empty_worker_keeps_no_record_of_an_unknown_version(worker: AmadConfig) -> None:
    with pytest.raises(DatasetNotFoundError):
        versioning.checkout_version("f" * 32, worker)
    assert not (data_dir(worker).parent / "data.dvc").exists()


def test_windows_stage_checks_out_the_requested_version(
    worker: AmadConfig, published: Published, tmp_path: Path
) -> None:
    v1, v2 = published.versions
    with pytest.raises(DataError, match="requested but none is checked out"):
        stages.windows(worker, data_version=v1, out_dir=tmp_path / "w1", checkout=False)
    out = stages.windows(worker, data_version=v1, out_dir=tmp_path / "w1")
    assert versioning.data_version(data_dir(worker).parent) == v1
    assert stages.load_prepared(out).test_scaled.shape[0] == 60  # last 30 % of 200 rows

    stages.windows(worker, data_version=v2, out_dir=tmp_path / "w2")
    assert dataset.tree_digest(data_dir(worker)) == published.digests[1]
    assert stages.windows(worker, data_version=v1, out_dir=tmp_path / "w1") == out  # built: reused
    assert versioning.data_version(data_dir(worker).parent) == v2  # ... without a checkout
