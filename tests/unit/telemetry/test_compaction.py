"""Compaction: an entity-day's parts become one, same rows and fingerprints, crash-safe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from amad.cli import cli
from amad.config import ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.telemetry import compaction, dataset
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.schema import Contract

ENTITIES = ["e1", "e2"]
CFG = ContractConfig(compact_after_parts=None)  # the built-in columns, no automatic compaction
CONTRACT = Contract(CFG)
BATCHES = 4  # consecutive 30-minute batches: one day, four parts per entity


def batch(b: int, n: int = 30) -> pd.DataFrame:
    syn = SyntheticConfig(n_channels=len(CFG.columns))
    start = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(minutes=b * n)
    return pd.concat(
        [
            to_frame(
                generate(syn, n_steps=n, seed=k, start_step=b * n),
                entity=e,
                start=start,
                cadence_s=60,
                columns=CFG.columns,
            )
            for k, e in enumerate(ENTITIES)
        ],
        ignore_index=True,
    )


def ingest_batches(root: Path, cfg: ContractConfig, count: int = BATCHES) -> Path:
    paths = []
    for b in range(count):
        paths.append(root / "in" / f"b{b}.csv")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        paths[-1].write_bytes(to_csv_bytes(batch(b)))
    report = ingest(paths, cfg, root / "data", root / "q", reports_dir=root / "reports")
    assert [o.status for o in report.outcomes] == ["accepted"] * count
    return root / "data"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest_batches(tmp_path_factory.mktemp("ingested"), CFG)


@pytest.fixture
def data(ingested: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested dataset (four parts per entity-day)."""
    return Path(shutil.copytree(ingested, tmp_path / "data"))


def files_on_disk(data_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(data_dir).as_posix() for p in (data_dir / "telemetry").rglob("*.parquet")
    )


def test_each_entity_day_becomes_one_part_with_the_same_rows(data: Path) -> None:
    before_rows = dataset.load_dataset(data, CONTRACT)
    before_fp = dataset.entity_fingerprints(data)
    before_series = dataset.dataset_series(data, CONTRACT, "e1")
    assert len(files_on_disk(data)) == BATCHES * len(ENTITIES)

    done = compaction.compact(data, CONTRACT)

    assert [d["parts"] for d in done] == [BATCHES] * len(ENTITIES)
    parts = dataset.committed_parts(data)
    assert len(parts) == len(ENTITIES) and files_on_disk(data) == parts  # old parts deleted
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), before_rows)
    assert dataset.entity_fingerprints(data) == before_fp
    after_series = dataset.dataset_series(data, CONTRACT, "e1")
    assert after_series.fingerprint() == before_series.fingerprint()
    assert len(dataset.manifests(data)) == BATCHES  # batch manifests are never edited
    assert not [p for p in (data / dataset.STAGING).iterdir() if p.is_dir()]
    assert compaction.compact(data, CONTRACT) == []  # nothing left to do


def test_only_days_past_the_limit_are_compacted(data: Path) -> None:
    assert compaction.compact(data, CONTRACT, max_parts_per_day=BATCHES) == []
    assert len(compaction.compact(data, CONTRACT, max_parts_per_day=BATCHES - 1)) == 2
    with pytest.raises(ValueError, match="at least 1"):
        compaction.compact(data, CONTRACT, max_parts_per_day=0)


def test_the_same_parts_compact_to_the_same_bytes(
    data: Path, ingested: Path, tmp_path: Path
) -> None:
    other = Path(shutil.copytree(ingested, tmp_path / "other"))
    compaction.compact(data, CONTRACT)
    compaction.compact(other, CONTRACT)
    assert dataset.tree_digest(data) == dataset.tree_digest(other)


def test_later_batches_and_a_second_compaction_keep_every_row(data: Path, tmp_path: Path) -> None:
    compaction.compact(data, CONTRACT)
    late = []
    for b in (BATCHES, BATCHES + 1):  # the second one is checked against two parts of its day
        late.append(tmp_path / f"late{b}.csv")
        late[-1].write_bytes(to_csv_bytes(batch(b)))
    report = ingest(late, CFG, data, tmp_path / "q", reports_dir=tmp_path / "reports")
    assert [o.status for o in report.outcomes] == ["accepted"] * 2
    fp = dataset.entity_fingerprints(data)
    rows = dataset.load_dataset(data, CONTRACT)
    assert len(rows) == (BATCHES + 2) * 30 * len(ENTITIES)
    done = compaction.compact(data, CONTRACT)  # the compacted part is superseded in turn
    assert [d["parts"] for d in done] == [3, 3]
    assert len(files_on_disk(data)) == 2
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), rows)
    assert dataset.entity_fingerprints(data) == fp


@pytest.mark.parametrize("step", ["move", "commit", "delete"])
def test_a_crash_mid_compaction_leaves_a_readable_dataset_that_recover_completes(
    data: Path, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before the part is moved, before the manifest rename, or after it but before the
    superseded parts are deleted: readers see exactly the old rows, recover finishes the job."""
    rows = dataset.load_dataset(data, CONTRACT)
    fp = dataset.entity_fingerprints(data)

    def crash(*_: object, **__: object) -> None:
        raise OSError(f"killed at {step}")

    if step == "move":
        monkeypatch.setattr(dataset, "_move", crash)
    elif step == "commit":
        monkeypatch.setattr(dataset, "_write_atomic", crash)
    else:
        real = dataset._write_atomic

        def write_then_crash(path: Path, blob: bytes) -> None:
            real(path, blob)
            raise OSError("killed after the commit rename")

        monkeypatch.setattr(dataset, "_write_atomic", write_then_crash)
    with pytest.raises(OSError, match="killed"):
        compaction.compact(data, CONTRACT)
    monkeypatch.undo()

    # the first entity-day was being compacted; the second was not reached
    one_day, untouched = (1 if step == "delete" else BATCHES), BATCHES
    assert len(dataset.committed_parts(data)) == one_day + untouched
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), rows)  # never both
    assert len(dataset.recover(data)) == 1  # the staged compaction is rolled forward
    assert files_on_disk(data) == dataset.committed_parts(data)  # superseded parts are gone
    assert len(files_on_disk(data)) == 1 + untouched
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), rows)
    assert [d["parts"] for d in compaction.compact(data, CONTRACT)] == [untouched]
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), rows)
    assert dataset.entity_fingerprints(data) == fp


def test_a_reader_that_lost_the_race_lists_the_parts_again(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = dataset.load_dataset(data, CONTRACT)
    stale = dataset.committed_parts(data)
    compaction.compact(data, CONTRACT)  # deletes every part in ``stale``
    real, calls = dataset.committed_parts, []

    def listed_before_the_compaction(root: Path, entity: str | None = None) -> list[str]:
        calls.append(entity)
        return stale if len(calls) == 1 else real(root, entity)

    monkeypatch.setattr(dataset, "committed_parts", listed_before_the_compaction)
    pd.testing.assert_frame_equal(dataset.load_dataset(data, CONTRACT), rows)
    assert len(calls) == 2


def test_ingest_compacts_a_day_past_compact_after_parts(tmp_path: Path) -> None:
    data = ingest_batches(tmp_path, CFG.model_copy(update={"compact_after_parts": 2}))
    days = compaction.day_parts(data)
    assert len(days) == len(ENTITIES) and all(len(p) == 1 for p in days.values())
    assert len(dataset.load_dataset(data, CONTRACT)) == BATCHES * 30 * len(ENTITIES)


def test_cli_data_compact(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(data.parent)  # no params.yaml here: the built-in contract
    result = CliRunner().invoke(
        cli, ["data", "compact", "--no-dvc", "--set", f"contract.data_dir={data}"]
    )
    assert result.exit_code == 0, result.output
    assert f"compacted 2 entity-day(s): {BATCHES * 2} parts -> 2" in result.output
    assert len(files_on_disk(data)) == 2
