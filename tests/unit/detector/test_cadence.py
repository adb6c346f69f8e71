"""Scoring at cadence: an entity's short batch is scored after the rows kept from the last one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from amad.config import build_config
from amad.detector import cadence
from amad.errors import ConflictError, DataError
from amad.storage.store import LocalStore
from amad.telemetry.schema import Contract

LENGTH = 8
COLUMNS = ["m00", "m01"]


@dataclass
class StubBundle:
    """Scores each step by its first metric; refuses series shorter than a window, like a model."""

    seen: list[int]
    channels: list[str] | None = None
    config: Any = field(
        default_factory=lambda: SimpleNamespace(windows=SimpleNamespace(length=LENGTH))
    )

    def score(self, x: np.ndarray) -> Any:
        assert len(x) >= LENGTH, "a model cannot score fewer steps than one window"
        self.seen.append(len(x))
        return SimpleNamespace(scores=x[:, 0].astype(float), flags=x[:, 0] > 100)


@pytest.fixture
def contract() -> Contract:
    cfg = build_config({"contract": {"columns": [{"name": c} for c in COLUMNS]}})
    return Contract(cfg.contract)


def rows(start: int, n: int) -> pd.DataFrame:
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(start, start + n), "min")
    values = np.arange(start, start + n, dtype=np.float32)
    return pd.DataFrame({"timestamp": ts, "m00": values, "m01": -values})


def test_one_row_is_scored_with_the_previous_window(contract: Contract) -> None:
    bundle = StubBundle(seen=[])
    first, keep, _ = cadence.score_entity(bundle, rows(0, 60), None, contract)  # type: ignore[arg-type]
    assert first is not None and len(first) == 60 and len(keep) == LENGTH - 1
    assert keep["m00"].tolist() == list(range(53, 60))
    one, keep2, note = cadence.score_entity(bundle, rows(60, 1), keep, contract)  # type: ignore[arg-type]
    assert note == "context used" and bundle.seen[-1] == LENGTH  # 7 kept rows + the new one
    assert one is not None and one["score"].tolist() == [60.0]  # only the new row is reported
    assert keep2["m00"].tolist() == list(range(54, 61))


def test_an_entity_warms_up_until_it_has_one_window(contract: Contract) -> None:
    bundle = StubBundle(seen=[])
    scored, keep, note = cadence.score_entity(bundle, rows(0, 3), None, contract)  # type: ignore[arg-type]
    assert scored is None and "warming up" in note and len(keep) == 3
    scored, keep, _ = cadence.score_entity(bundle, rows(3, 5), keep, contract)  # type: ignore[arg-type]
    assert scored is not None and scored["score"].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_context_after_a_long_gap_or_from_the_future_is_not_used(contract: Contract) -> None:
    bundle = StubBundle(seen=[])
    kept = rows(0, LENGTH - 1)
    _, _, gap = cadence.score_entity(bundle, rows(10_000, LENGTH), kept, contract)  # type: ignore[arg-type]
    _, _, older = cadence.score_entity(bundle, rows(0, LENGTH), kept, contract)  # type: ignore[arg-type]
    assert gap == older == "no preceding context"


def test_missing_model_columns_are_a_data_error(contract: Contract) -> None:
    bundle = StubBundle(seen=[], channels=["m00", "other"])
    with pytest.raises(DataError, match="other"):
        cadence.score_entity(bundle, rows(0, LENGTH), None, contract)  # type: ignore[arg-type]


def test_context_moves_only_with_the_etag_it_was_read_with(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    key = cadence.context_key("amad", "e1")
    empty = cadence.read_context(store, key)
    assert empty.rows is None
    cadence.write_context(store, key, rows(0, 3), empty)
    with pytest.raises(ConflictError):  # a second run that also read "nothing" loses
        cadence.write_context(store, key, rows(0, 3), empty)
    read = cadence.read_context(store, key)
    assert read.rows is not None and read.rows["m00"].tolist() == [0.0, 1.0, 2.0]
    cadence.write_context(store, key, rows(3, 3), read)
    with pytest.raises(ConflictError):
        cadence.write_context(store, key, rows(6, 3), read)  # stale etag
