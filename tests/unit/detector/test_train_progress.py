"""Long work shows progress: one INFO line per epoch with loss, windows/s and an ETA."""

from __future__ import annotations

import logging

import pytest

from amad.detector.train import fit
from tests.unit.detector.test_train import MODEL, TRAIN, VAL, _cfg


def test_every_epoch_logs_its_progress(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="amad.detector.train"):
        fit(MODEL, _cfg(epochs=2), TRAIN, VAL, progress=False)
    # one record object per emitted line: a handler an earlier test left on the amad logger can
    # hand the same record to caplog twice, which is not a second log line
    records = list({id(r): r for r in caplog.records}.values())
    lines = [r.getMessage() for r in records if "ETA" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("train loss" in line and "windows/s" in line for line in lines)
    assert lines[-1].endswith("ETA 0s")  # nothing left after the last epoch
