"""Drills on entity ids (issue 13, item 2): read as text, never inferred; unusable ids quarantined."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.errors import DataError
from amad.series.synthetic import generate, to_frame
from amad.telemetry import dataset
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.schema import Contract, read_batch

CFG = ContractConfig(columns=[ColumnSpec(name=f"m{i}") for i in range(3)])
CONTRACT = Contract(CFG)
TRICKY = ["007", "true", "2024-01-01", "NA", "null", "None", "nan"]  # ids, not values or nulls


def batch(entities: list[str], b: int = 0, n: int = 30) -> pd.DataFrame:
    syn = SyntheticConfig(n_channels=3)
    start = pd.Timestamp("2024-03-01T00:00:00Z") + pd.Timedelta(minutes=b * n)
    parts = [
        to_frame(
            generate(syn, n_steps=n, seed=k, start_step=b * n),
            entity=e,
            start=start,
            cadence_s=60,
            columns=CFG.columns,
        )
        for k, e in enumerate(entities)
    ]
    return pd.concat(parts, ignore_index=True)


def run(paths: list[Path], root: Path):  # type: ignore[no-untyped-def]
    return ingest(paths, CFG, root / "data", root / "q", reports_dir=root / "reports")


def test_csv_entity_ids_are_read_as_written() -> None:
    frame = read_batch(to_csv_bytes(batch(TRICKY)), "b.csv", CONTRACT)
    assert sorted(pd.unique(frame["entity"])) == sorted(TRICKY)


def test_tricky_ids_land_as_one_entity_each_across_batches(tmp_path: Path) -> None:
    paths = []  # one entity per file, so nothing but the id itself can steer type inference
    for b in range(2):
        for k, entity in enumerate(TRICKY):
            paths.append(tmp_path / f"b{b}-{k}.csv")
            paths[-1].write_bytes(to_csv_bytes(batch([entity], b)))
    report = run(paths, tmp_path)
    assert [o.status for o in report.outcomes] == ["accepted"] * 2 * len(TRICKY)
    assert dataset.entities(tmp_path / "data") == sorted(TRICKY)
    loaded = dataset.load_dataset(tmp_path / "data", CONTRACT)
    assert sorted(pd.unique(loaded["entity"])) == sorted(TRICKY) and len(loaded) == 60 * len(TRICKY)
    one = dataset.load_dataset(tmp_path / "data", CONTRACT, entities=["NA"])
    assert len(one) == 60 and set(one["entity"]) == {"NA"}
    # the same rows again, under other bytes, are caught as already ingested
    again = tmp_path / "again.csv"
    again.write_bytes(to_csv_bytes(batch(["007"], 1)) + b"\n")
    assert [o.status for o in run([again], tmp_path).outcomes] == ["quarantined"]


def _struct_entity_parquet(path: Path) -> Path:
    frame = batch(["e1"])
    table = pa.Table.from_pandas(frame.drop(columns=["entity"]), preserve_index=False)
    struct = pa.array([{"id": "e1"}] * len(frame))
    pq.write_table(table.append_column("entity", struct), path)
    return path


@pytest.mark.parametrize("kind", ["long_id", "struct_entity"])
def test_unusable_ids_are_quarantined_and_the_next_batch_still_lands(
    tmp_path: Path, kind: str
) -> None:
    bad = tmp_path / "bad.parquet"
    if kind == "long_id":
        bad = tmp_path / "bad.csv"
        bad.write_bytes(to_csv_bytes(batch(["x" * 300])))
    else:
        _struct_entity_parquet(bad)
    good = tmp_path / "good.csv"
    good.write_bytes(to_csv_bytes(batch(["e1"])))
    report = run([bad, good], tmp_path)
    assert [o.status for o in report.outcomes] == ["quarantined", "accepted"]
    expected = "entity_id_length" if kind == "long_id" else "text_column_type"
    assert report.outcomes[0].failed_checks == [expected]
    assert dataset.entities(tmp_path / "data") == ["e1"]


def test_a_part_written_with_an_inferred_id_type_stays_readable(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(to_csv_bytes(batch(["2024-01-01"], 0, n=30)))
    second.write_bytes(to_csv_bytes(batch(["2024-01-01"], 48, n=30)))  # the next day: a new part
    assert [o.status for o in run([first, second], tmp_path).outcomes] == ["accepted"] * 2
    parts = dataset.committed_parts(tmp_path / "data")
    assert len(parts) == 2
    legacy = tmp_path / "data" / parts[0]  # as the old reader wrote it: the id as a date
    table = pq.read_table(legacy)
    index = table.column_names.index("entity")
    dates = pa.array([pd.Timestamp("2024-01-01").date()] * table.num_rows, pa.date32())
    pq.write_table(table.set_column(index, "entity", dates), legacy)
    loaded = dataset.load_dataset(tmp_path / "data", CONTRACT)
    assert len(loaded) == 60 and set(loaded["entity"]) == {"2024-01-01"}


def test_a_series_of_several_entities_must_name_one(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_bytes(to_csv_bytes(batch(["b", "a"])))
    assert [o.status for o in run([path], tmp_path).outcomes] == ["accepted"]
    with pytest.raises(DataError, match="2 entities"):
        dataset.dataset_series(tmp_path / "data", CONTRACT)  # never "a", the first that sorts
    assert dataset.dataset_series(tmp_path / "data", CONTRACT, "b").entity == "b"
