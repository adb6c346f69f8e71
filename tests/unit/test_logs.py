"""Library log noise stays below the default level, even after the root logger is lowered."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from amad.cli import configure_logging
from amad.logs import QUIET_LIBRARIES


@pytest.fixture
def restore_levels() -> Iterator[None]:
    names = ("", "amad", *QUIET_LIBRARIES)
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_botocore_and_gx_info_lines_are_hidden(restore_levels: None) -> None:
    configure_logging(0)
    logging.getLogger().setLevel(logging.INFO)  # e.g. DVC's CLI set-up lowering the root later
    assert not logging.getLogger("botocore.credentials").isEnabledFor(logging.INFO)
    assert not logging.getLogger("great_expectations.data_context").isEnabledFor(logging.INFO)
    assert logging.getLogger("botocore.credentials").isEnabledFor(logging.WARNING)
    assert logging.getLogger("amad.stages").isEnabledFor(logging.INFO)


def test_very_verbose_shows_them(restore_levels: None) -> None:
    configure_logging(2)
    assert logging.getLogger("botocore.credentials").isEnabledFor(logging.DEBUG)


def test_a_library_that_resets_its_own_level_on_import_stays_quiet(restore_levels: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # the console handler an application installs
    logging.getLogger().addHandler(handler)
    try:
        configure_logging(0)
        noisy = logging.getLogger("great_expectations.data_context.types.base")
        noisy.setLevel(logging.INFO)  # what importing Great Expectations does, after our set-up
        noisy.info("Created temporary directory for ephemeral docs site")
        noisy.warning("a real GX warning")
        logging.getLogger("amad.telemetry").warning("amad's own line")
    finally:
        logging.getLogger().removeHandler(handler)
    out = stream.getvalue()
    assert "ephemeral docs site" not in out
    assert "a real GX warning" in out and "amad's own line" in out
