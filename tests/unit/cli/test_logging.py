"""``amad -v``: the verbosity flag changes what the amad loggers let through."""

from __future__ import annotations

import logging

import pytest

from amad.cli import configure_logging


@pytest.fixture(autouse=True)
def _restore_level() -> object:
    logger = logging.getLogger("amad")
    before = logger.level
    yield None
    logger.setLevel(before)


@pytest.mark.parametrize(("verbose", "level"), [(0, logging.INFO), (1, logging.DEBUG)])
def test_verbose_flag_sets_the_amad_log_level(verbose: int, level: int) -> None:
    configure_logging(verbose)
    assert logging.getLogger("amad").getEffectiveLevel() == level
    assert logging.getLogger("amad.detector.train").isEnabledFor(logging.DEBUG) == bool(verbose)
