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


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Set every logger in ``QUIET_LIBRARIES`` to ``level`` (WARNING by default)."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level)
