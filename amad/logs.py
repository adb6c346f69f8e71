"""Which third-party loggers an application keeps below its default level, in one place.

Library modules only ever call ``logging.getLogger(__name__)``; the applications (the ``amad``
CLI, the Prefect flows) configure logging and call :func:`quiet_libraries` so that chatty
dependencies stay at WARNING even when something else (DVC's own CLI set-up, a ``basicConfig``
at INFO) lowers the root logger later: botocore's "Found credentials in environment variables"
on every S3 client, Great Expectations' ephemeral Data Docs site line, s3transfer and urllib3
connection chatter. A level set on the library's own logger wins over the root's.
"""

from __future__ import annotations

import logging

QUIET_LIBRARIES: tuple[str, ...] = (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "great_expectations",
    "s3fs",
    "aiobotocore",
)


class QuietLibraries(logging.Filter):
    """A handler filter dropping records of ``QUIET_LIBRARIES`` (and their children) below
    ``level``: some set their own module loggers' levels on import, after the application set
    theirs (Great Expectations sets ``...data_context.types.base`` to INFO), which a level on the
    parent logger cannot undo."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in QUIET_LIBRARIES)


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Set every logger in ``QUIET_LIBRARIES`` to ``level`` (WARNING by default), and filter
    their records below ``level`` at every handler of the root logger."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, QuietLibraries)]:
            handler.removeFilter(old)
        handler.addFilter(QuietLibraries(level))
