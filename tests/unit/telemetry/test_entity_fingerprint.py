"""Per-entity data: a content id per entity, and reading one entity opens only its parts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from amad.storage.records import VersionInfo
from amad.telemetry import compaction, dataset
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from tests.unit.telemetry.test_compaction import BATCHES, CFG, CONTRACT, batch, ingest_batches


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest_batches(tmp_path_factory.mktemp("ingested"), CFG, count=2)


@pytest.fixture
def data(ingested: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ingested, tmp_path / "data"))


def test_a_batch_for_one_entity_changes_only_its_fingerprint(data: Path, tmp_path: Path) -> None:
    before = dataset.entity_fingerprints(data)
    assert set(before) == {"e1", "e2"} and before["e1"] != before["e2"]
    only_e1 = batch(BATCHES).query("entity == 'e1'")
    path = tmp_path / "e1.csv"
    path.write_bytes(to_csv_bytes(only_e1))
    report = ingest([path], CFG, data, tmp_path / "q", reports_dir=tmp_path / "reports")
    assert report.outcomes[0].status == "accepted" and report.changed
    after = dataset.entity_fingerprints(data)
    assert after["e2"] == before["e2"] and after["e1"] != before["e1"]
    assert dataset.entity_fingerprint(data, "e1") == after["e1"]
    assert dataset.entity_fingerprint(data, "nobody") is None


def test_the_fingerprint_names_content_not_files(data: Path, ingested: Path) -> None:
    before = dataset.entity_fingerprints(data)
    assert dataset.entity_fingerprints(ingested) == before  # same batches, another folder
    compaction.compact(data, CONTRACT)
    assert len(dataset.committed_parts(data, "e1")) == 1
    assert dataset.entity_fingerprints(data) == before


def test_reading_one_entity_opens_only_its_parts(data: Path) -> None:
    theirs = dataset.committed_parts(data, "e2")
    mine = dataset.committed_parts(data, "e1")
    assert theirs and mine and not set(theirs) & set(mine)
    assert all(rel.startswith("telemetry/entity=e1/") for rel in mine)
    expected = dataset.dataset_series(data, CONTRACT, "e1")
    for rel in theirs:  # every part of the other entity is now unreadable
        (data / rel).write_bytes(b"not parquet")
    series = dataset.dataset_series(data, CONTRACT, "e1")
    assert series.fingerprint() == expected.fingerprint()
    assert len(dataset.load_dataset(data, CONTRACT, entities=["e1"])) == 2 * 30
    with pytest.raises(pa.ArrowInvalid):  # the whole-dataset read does open them
        dataset.load_dataset(data, CONTRACT)


def test_a_version_record_carries_the_fingerprint_and_old_records_read_as_none() -> None:
    info = VersionInfo(model_name="amad", version="20240101T000000Z-0123456789ab", run_id="r",
                       created_at="now", data_version="d1", metrics={}, files={"a": "b"},
                       entity_fingerprint="f" * 64)  # fmt: skip
    assert VersionInfo.from_dict(info.to_dict()) == info
    old = {k: v for k, v in info.to_dict().items() if k != "entity_fingerprint"}
    assert VersionInfo.from_dict(old).entity_fingerprint is None
