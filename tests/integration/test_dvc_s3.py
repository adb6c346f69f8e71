"""A data version goes through a real S3 server (SeaweedFS on 127.0.0.1) and comes back.

Batches are read from an S3 prefix, ingested, recorded with ``dvc add`` and pushed to an S3
remote whose endpoint and keys live only in the environment; the workspace copy and the DVC
cache are then removed and ``dvc pull`` restores exactly the same dataset and version. A fresh
worker (the DVC skeleton only) checks out an older version by md5 from the same remote.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig, build_config
from amad.errors import DatasetNotFoundError, TransientStorageError
from amad.series.synthetic import generate, to_frame
from amad.storage.s3 import S3Store
from amad.telemetry import dataset, versioning
from amad.telemetry.corruptions import make_bad, to_csv_bytes, to_parquet_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.schema import Contract
from tests.conftest import free_port

pytestmark = pytest.mark.slow

CFG = ContractConfig(columns=[ColumnSpec(name=f"m{i}") for i in range(4)])


def batch(b: int, n: int = 120) -> pd.DataFrame:
    syn = SyntheticConfig(n_channels=4)
    return to_frame(
        generate(syn, n_steps=n, seed=3, start_step=b * n),
        entity="e1",
        start=pd.Timestamp("2024-05-01T00:00:00Z") + pd.Timedelta(minutes=b * n),
        cadence_s=60,
        columns=CFG.columns,
    )


def test_push_and_pull_a_data_version(
    tmp_path: Path, s3_env: dict[str, str], s3_bucket: str, s3_store: S3Store
) -> None:
    repo = versioning.init_repo(tmp_path / "repo", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "s3", f"s3://{s3_bucket}/dvc"], repo)
    assert s3_env["AWS_ENDPOINT_URL"] not in (repo / ".dvc" / "config").read_text()
    s3_store.put_bytes("incoming/b0.csv", to_csv_bytes(batch(0)))
    s3_store.put_bytes("incoming/b1.parquet", to_parquet_bytes(batch(1)))
    bad, _ = make_bad("gap", batch(2), Contract(CFG))
    s3_store.put_bytes("incoming/b2.csv", bad)
    data, quarantine = repo / "data", repo / "quarantine"

    report = ingest([f"s3://{s3_bucket}/incoming"], CFG, data, quarantine,
                    reports_dir=tmp_path / "reports")  # fmt: skip

    assert [o.status for o in report.outcomes] == ["accepted", "accepted", "quarantined"]
    assert (quarantine / report.outcomes[2].sha256 / "original" / "b2.csv").read_bytes() == bad
    version = versioning.commit(repo, data)
    assert versioning.commit(repo, data) == version  # unchanged data, same version
    versioning.push(repo, data)
    assert any(k.startswith("dvc/") for k in s3_store.list(""))
    digest = dataset.tree_digest(data)

    shutil.rmtree(data)
    shutil.rmtree(repo / ".dvc" / "cache")
    versioning.pull(repo, data)

    assert dataset.tree_digest(data) == digest
    assert versioning.data_version(repo, data) == version
    assert len(dataset.load_dataset(data, Contract(CFG))) == 240


def publish_two_versions(repo: Path, tmp_path: Path) -> tuple[list[str], list[str]]:
    versions, digests = [], []
    for b in range(2):
        source = tmp_path / f"b{b}.csv"
        source.write_bytes(to_csv_bytes(batch(b)))
        ingest([source], CFG, repo / "data", tmp_path / "q", reports_dir=tmp_path / "reports")
        versions.append(versioning.commit(repo, repo / "data"))
        versioning.push(repo, repo / "data")
        digests.append(dataset.tree_digest(repo / "data"))
    return versions, digests


def test_a_fresh_worker_checks_out_a_version_by_md5(
    tmp_path: Path, s3_env: dict[str, str], s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = versioning.init_repo(tmp_path / "publisher", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "s3", f"s3://{s3_bucket}/dvc"], publisher)
    versions, digests = publish_two_versions(publisher, tmp_path)
    worker = versioning.init_repo(tmp_path / "worker", no_scm=True)
    shutil.copy(publisher / ".dvc" / "config", worker / ".dvc" / "config")
    contract = {**CFG.model_dump(mode="json"), "data_dir": str(worker / "data")}
    cfg = build_config({"contract": contract})

    versioning.checkout_version(versions[0], cfg)

    assert dataset.tree_digest(worker / "data") == digests[0]
    assert versioning.data_version(worker) == versions[0]
    with pytest.raises(DatasetNotFoundError, match="was it pushed"):
        versioning.checkout_version("0" * 32, cfg)
    unreachable = f"http://127.0.0.1:{free_port()}"
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.setenv(name, unreachable)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast instead of botocore's backoff
    with pytest.raises(TransientStorageError):
        versioning.checkout_version(versions[1], cfg)
    assert versioning.data_version(worker) == versions[0]  # record and data left as they were
    assert dataset.tree_digest(worker / "data") == digests[0]
