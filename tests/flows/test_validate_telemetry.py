"""validate_telemetry under the Prefect harness with the real ingest, GX and DVC."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.demo_steps import break_batch
from flows.validate_telemetry import validate_telemetry
from tests.flows.helpers import PARAMS, make_workspace

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_good_batch_is_versioned_and_broken_batch_quarantined(tmp_path: Path) -> None:
    overrides, batches = make_workspace(tmp_path / "ws")
    bad = break_batch(batches[0], tmp_path / "ws" / "in" / "broken.csv")

    state = validate_telemetry([str(batches[0]), str(bad)], PARAMS, overrides, return_state=True)
    result = state.result()

    assert result["accepted"] == 1 and result["quarantined"] == 1
    assert result["data_version"]
    rows = {row["batch"]: row for row in result["batches"]}
    assert rows["broken.csv"]["failed"], rows["broken.csv"]
    assert rows["broken.csv"]["status"] == "quarantined"
    assert isinstance(rows["broken.csv"]["summary"], str) and rows["broken.csv"]["summary"]
    assert Path(rows["broken.csv"]["quarantine"]).is_dir()
    assert (tmp_path / "ws" / "data.dvc").is_file()

    again = validate_telemetry([str(batches[0])], PARAMS, overrides)
    assert again["accepted"] == 0
    assert again["batches"][0]["status"] == "duplicate"
    assert again["data_version"] == result["data_version"]

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["telemetry-validation"]))
        )
    mine = [a for a in artifacts if a.flow_run_id == state.state_details.flow_run_id]
    assert mine and "quarantined" in mine[0].data and "broken.csv" in mine[0].data
