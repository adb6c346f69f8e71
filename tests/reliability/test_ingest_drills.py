"""Drills on concurrent and interrupted ingests (issue 13, item 3): a lock, no lost batch, no wedge."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.errors import BusyError, exit_code_for
from amad.series.synthetic import generate, to_frame
from amad.telemetry import dataset, versioning
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.lock import dataset_lock, lock_path

COLUMNS = [ColumnSpec(name=f"m{i}") for i in range(3)]


def batch_bytes(entity: str, seed: int) -> bytes:
    series = generate(SyntheticConfig(n_channels=3), n_steps=40, seed=seed)
    frame = to_frame(series, entity=entity, start=pd.Timestamp("2024-05-01T00:00:00Z"),
                     cadence_s=60, columns=COLUMNS)  # fmt: skip
    return to_csv_bytes(frame)


def test_a_held_lock_makes_a_second_writer_wait_then_fail_typed(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "data")
    path.parent.mkdir(parents=True)
    with path.open("w") as other:  # another process's lock: a separate open file description
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BusyError) as exc, dataset_lock(tmp_path / "data", timeout_s=0):
            pass
    assert exit_code_for(exc.value) == 12
    with dataset_lock(tmp_path / "data", timeout_s=0), dataset_lock(tmp_path / "data"):
        pass  # free again, and reentrant within a process


def test_a_half_deleted_staging_does_not_wedge_later_ingests(tmp_path: Path) -> None:
    cfg = ContractConfig(columns=COLUMNS)
    data, q, reports = tmp_path / "data", tmp_path / "q", tmp_path / "reports"
    first = tmp_path / "a.csv"
    first.write_bytes(batch_bytes("e1", 0))
    # a complete staging whose part a concurrent rm -r already removed: only the manifest is left
    staging = data / dataset.STAGING / ("f" * 64)
    staging.mkdir(parents=True)
    part = "telemetry/entity=zz/date=2024-05-01/part-ffffffffffffffff.parquet"
    manifest = {"sha256": "f" * 64, "rows": 1, "files": {part: {"rows": 1, "sha256": "0" * 64}}}
    (staging / "manifest.json").write_text(json.dumps(manifest))
    report = ingest([first], cfg, data, q, reports_dir=reports)
    assert [o.status for o in report.outcomes] == ["accepted"]
    assert not staging.exists() and dataset.entities(data) == ["e1"]


@pytest.mark.slow
def test_ten_concurrent_cli_ingests_all_land_with_one_version(tmp_path: Path) -> None:
    repo = versioning.init_repo(tmp_path / "repo", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "local", str(tmp_path / "remote")], repo)
    params = {"contract": {"columns": [c.model_dump() for c in COLUMNS]}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    paths = []
    for k in range(10):
        paths.append(repo / f"b{k}.csv")
        paths[-1].write_bytes(batch_bytes(f"e{k}", k))
    amad = str(Path(sys.executable).with_name("amad"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.PIPE
    procs = [
        subprocess.Popen(
            [amad, "ingest", str(p)],
            cwd=repo,
            env=env,
            text=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        for p in paths
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    results = [(p.returncode, text) for p, text in zip(procs, outputs, strict=True)]
    assert [rc for rc, _ in results] == [0] * 10, results
    assert dataset.entities(repo / "data") == sorted(f"e{k}" for k in range(10))
    assert len(dataset.manifests(repo / "data")) == 10
    version = versioning.data_version(repo, "data")
    status = versioning.run_dvc(["status", "data.dvc"], repo)
    cloud = versioning.run_dvc(["status", "-c", "data.dvc"], repo)
    assert version and "up to date" in status.lower() and "in sync" in cloud.lower()
    assert not [p for p in (repo / "data" / ".staging").iterdir() if p.is_dir()]
