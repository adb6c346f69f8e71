"""Every malformed batch kind is rejected with its check named, quarantined byte-identical, and
leaves the accepted dataset (its content and its version) exactly as it was.

One module-scoped dataset holds a first accepted batch; each bad batch is made from the next
(good) batch by ``amad.telemetry.corruptions`` and ingested against it. Drift runs with
``drift_severity=error`` here; the warning case is checked separately (accepted, recorded).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from amad.telemetry import dataset
from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.telemetry.corruptions import BAD_KINDS, make_bad, to_csv_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.schema import Contract
from amad.series.synthetic import generate, to_frame

COLUMNS = [ColumnSpec(name="m0", min=-1e4, max=1e4)] + [
    ColumnSpec(name=f"m{i}") for i in range(1, 4)
]
CFG = ContractConfig(columns=COLUMNS, entities=["e1", "e2"], drift_severity="error")
CONTRACT = Contract(CFG)


def batch(b: int, n: int = 80) -> pd.DataFrame:
    syn = SyntheticConfig(n_channels=len(COLUMNS))
    return pd.concat(
        [
            to_frame(
                generate(syn, n_steps=n, seed=k, start_step=b * n),
                entity=e,
                start=pd.Timestamp("2024-03-01T00:00:00Z") + pd.Timedelta(minutes=b * n),
                cadence_s=60,
                columns=COLUMNS,
            )
            for k, e in enumerate(["e1", "e2"])
        ],
        ignore_index=True,
    )


class Store:
    """The module's dataset: paths plus its state after the first accepted batch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.quarantine = root / "quarantine"
        self.first = batch(0)
        self.next = batch(1)
        (root / "b0.csv").write_bytes(to_csv_bytes(self.first))
        report = self.ingest(root / "b0.csv")
        assert report.outcomes[0].status == "accepted", report.outcomes[0].message
        self.digest = dataset.tree_digest(self.data)
        self.fingerprint = dataset.dataset_fingerprint(self.data)

    def ingest(self, path: Path, cfg: ContractConfig = CFG):  # type: ignore[no-untyped-def]
        return ingest([path], cfg, self.data, self.quarantine, reports_dir=self.root / "reports")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield Store(tmp_path_factory.mktemp("bad-batches"))


def test_there_are_at_least_25_kinds() -> None:
    assert len(BAD_KINDS) >= 25


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_bad_batch_is_rejected_and_quarantined_intact(store: Store, kind: str) -> None:
    data, suffix = make_bad(kind, store.next, CONTRACT, store.first)
    path = store.root / f"bad-{kind}{suffix}"
    path.write_bytes(data)

    outcome = store.ingest(path).outcomes[0]

    check = BAD_KINDS[kind].check
    assert outcome.status == "quarantined", outcome.message
    assert check in outcome.failed_checks, outcome.message
    assert check in outcome.message  # the message names the failed check
    quarantined = Path(outcome.quarantine_dir or "") / "original" / path.name
    assert quarantined.read_bytes() == data  # byte-identical
    assert (quarantined.parent.parent / "report.json").is_file()
    assert dataset.tree_digest(store.data) == store.digest  # content unchanged
    assert dataset.dataset_fingerprint(store.data) == store.fingerprint  # version unchanged


def test_drift_as_a_warning_is_accepted_and_recorded(store: Store, tmp_path: Path) -> None:
    lenient = CFG.model_copy(update={"drift_severity": "warning"})
    dirs = {"data_dir": tmp_path / "data", "quarantine_dir": tmp_path / "q"}
    (tmp_path / "b0.csv").write_bytes(to_csv_bytes(store.first))
    (tmp_path / "drift.csv").write_bytes(make_bad("drift", store.next, CONTRACT)[0])
    report = ingest(
        [tmp_path / "b0.csv", tmp_path / "drift.csv"], lenient, reports_dir=tmp_path / "r", **dirs
    )
    assert [o.status for o in report.outcomes] == ["accepted", "accepted"]
    assert "drift_mean" in report.outcomes[1].warnings
