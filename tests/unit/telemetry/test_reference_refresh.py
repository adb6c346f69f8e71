"""``amad reference refresh``: the drift reference recomputed from accepted data on command,
written atomically, printed old -> new, and versioned (a new DVC data version)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from amad.cli import cli, main
from amad.config import ContractConfig
from amad.telemetry import dataset, versioning
from amad.telemetry.reference import read_reference
from amad.telemetry.schema import Contract


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _shifted(path: Path, out: Path, by: float) -> Path:
    frame = pd.read_csv(path, dtype={"entity": str})
    frame["m00"] = frame["m00"] + by
    frame.to_csv(out, index=False)
    return out


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DVC repository with three consecutive batches of one entity (the last two shifted)."""
    monkeypatch.chdir(tmp_path)
    versioning.init_repo(tmp_path, no_scm=True)
    code, out = _invoke("synth", "--out", "in", "--batches", "3", "--rows", "120",
                        "--entities", "e1", "--seed", "3")  # fmt: skip
    assert code == 0, out
    batches = sorted((tmp_path / "in").glob("batch-*.csv"))
    for b in batches[1:]:
        _shifted(b, b, 1000.0)  # far beyond 4 reference std: drift
    return tmp_path


def test_refresh_recomputes_from_recent_rows_and_versions(workspace: Path) -> None:
    sets = ["--set", "contract.data_dir=data"]
    batches = sorted((workspace / "in").glob("batch-*.csv"))
    code, out = _invoke("ingest", str(batches[0]), str(batches[1]), "--no-push", *sets)
    assert code == 0, out
    old = read_reference(workspace / "data")
    assert old is not None and old["m00"]["mean"] < 500  # the first batch's
    before = versioning.data_version(workspace, (workspace / "data").resolve())

    code, out = _invoke("reference", "refresh", "--last-rows", "120", "--no-push", *sets)
    assert code == 0, out
    new = read_reference(workspace / "data")
    assert new is not None and new["m00"]["mean"] > 500  # the recent (shifted) rows
    recent = dataset.load_dataset(workspace / "data", Contract(ContractConfig())).iloc[-120:]
    assert new["m00"]["mean"] == pytest.approx(float(recent["m00"].mean()))
    assert "m00" in out and "->" in out and "data version:" in out
    after = versioning.data_version(workspace, (workspace / "data").resolve())
    assert after is not None and after != before  # the change is a recorded data version
    assert not list((workspace / "data").glob(".*.tmp"))  # atomic: no temp file left

    # the next shifted batch no longer drifts against the refreshed reference
    code, out = _invoke("ingest", str(batches[2]), "--no-push", "--json", *sets)
    assert code == 0, out
    warned = json.loads(out[out.index("{") :])["outcomes"][0]["warnings"]
    assert "drift_mean" not in warned

    code, again = _invoke("reference", "refresh", "--no-push", *sets)  # all rows
    assert code == 0 and "(360 rows)" in again


def test_refresh_without_data_exits_4(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["reference", "refresh", "--no-dvc", "--set", "contract.data_dir=empty"])
    assert info.value.code == 4  # DataError (DatasetNotFoundError): nothing to refresh from
    assert "nothing to refresh from" in capsys.readouterr().err
