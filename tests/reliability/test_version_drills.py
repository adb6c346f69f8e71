"""Drills on data versioning (issue 13, item 4): a retry finishes an unfinished dvc add/push
instead of reporting the batch as a duplicate with a version no worker can check out."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.telemetry import dataset, versioning
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.schema import Contract
from tests.unit.helpers import run_cli as run

COLUMNS = [ColumnSpec(name=f"m{i}") for i in range(3)]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = versioning.init_repo(tmp_path / "repo", no_scm=True)
    versioning.run_dvc(["remote", "add", "-d", "good", str(tmp_path / "remote")], root)
    (tmp_path / "a-file").write_text("a remote cannot live under a file")
    versioning.run_dvc(["remote", "add", "broken", str(tmp_path / "a-file" / "remote")], root)
    params = {"contract": {"columns": [c.model_dump() for c in COLUMNS]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    series = generate(SyntheticConfig(n_channels=3), n_steps=40, seed=0)
    frame = to_frame(series, entity="e1", start=pd.Timestamp("2024-07-01T00:00:00Z"),
                     cadence_s=60, columns=COLUMNS)  # fmt: skip
    (root / "b0.csv").write_bytes(to_csv_bytes(frame))
    monkeypatch.chdir(root)
    return root


def in_sync(repo: Path) -> bool:
    local = versioning.run_dvc(["status", "data.dvc"], repo).lower()
    cloud = versioning.run_dvc(["status", "-c", "-r", "good", "data.dvc"], repo).lower()
    return "up to date" in local and "in sync" in cloud


@pytest.mark.slow
def test_a_failed_push_is_finished_by_the_retry(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["ingest", "b0.csv", "--set", "contract.dvc_remote=broken"], capsys)
    assert code == 9, err  # the batch is in, but not pushed: not a success
    code, out, err = run(["ingest", "b0.csv"], capsys)
    assert code == 0 and "duplicate" in out, err
    assert in_sync(repo)


@pytest.mark.slow
def test_a_batch_committed_but_never_added_is_versioned_by_the_retry(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["ingest", "b0.csv", "--no-dvc"], capsys)  # as if killed before dvc add
    assert code == 0, err
    code, out, err = run(["ingest", "b0.csv"], capsys)
    assert code == 0 and "duplicate" in out, err
    assert (repo / "data.dvc").is_file() and in_sync(repo)


@pytest.fixture
def full_cache(repo: Path, tmp_path: Path) -> Iterator[Path]:
    """The repository's DVC cache on a real 256 KiB tmpfs, filled to the last byte."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs to fill (needs root): {done.stderr.decode().strip()}"
        )
    try:
        versioning.run_dvc(["cache", "dir", str(mount / "cache")], repo)
        filler = mount / "filler"
        with contextlib.suppress(OSError), filler.open("wb", buffering=0) as fh:
            while True:
                fh.write(b"\0" * 4096)
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_inside_dvc_add_is_a_failure_the_retry_finishes(
    repo: Path, full_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["ingest", "b0.csv"], capsys)
    assert code == 1, out  # never "accepted" with a version the cache does not hold
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1, err
    full_cache.unlink()  # the operator frees space; nothing else is cleaned by hand
    code, out, err = run(["ingest", "b0.csv"], capsys)
    assert code == 0, err
    assert in_sync(repo)
    contract = Contract(ContractConfig(columns=COLUMNS))
    assert len(dataset.load_dataset(repo / "data", contract)) == 40  # nothing lost
