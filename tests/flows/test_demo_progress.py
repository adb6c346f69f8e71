"""The quiet demo still shows training progress: throttled epoch lines on stdout."""

from __future__ import annotations

import logging

import pytest

from flows.demo import show_training_progress


def test_epoch_lines_reach_stdout_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("amad.detector.train")
    level = log.level  # restored: later tests set amad's level through the parent logger
    handler = show_training_progress(every_s=3600.0)
    try:
        log.info("epoch 1/9: train loss 0.5, val rec 0.4, 100 windows/s, 1.0s, ETA 8s")
        log.info("epoch 2/9: train loss 0.4, val rec 0.3, 100 windows/s, 1.0s, ETA 7s")
        log.info("stopped early after epoch 3 (best 2)")
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    out = capsys.readouterr().out
    assert "training: epoch 1/9" in out and "ETA 8s" in out
    assert "epoch 2/9" not in out  # within the throttle window
    assert "training: stopped early after epoch 3" in out  # the last word always shows
