"""Typed errors for the whole library, one tree so callers can catch by meaning.

    AmadError
    ├── ConfigError                 params.yaml or overrides are invalid (unknown key, bad value)
    ├── DataError                   input data cannot be used
    │   ├── DataValidationError     a telemetry batch broke the contract (carries the report)
    │   └── DatasetNotFoundError    a dataset root / entity does not exist
    ├── TrainingError               training could not produce a model
    │   └── NonFiniteLossError      loss became NaN or infinite (last good checkpoint is kept)
    ├── ArtifactError               a model bundle is missing, incomplete or tampered with
    │   └── CorruptPointerError     the champion pointer is unreadable (promote/rollback repair it)
    ├── StorageError                object storage failed
    │   ├── TransientStorageError   worth retrying (timeouts, 5xx, connection refused)
    │   ├── PermanentStorageError   not worth retrying (404, access denied, bad request)
    │   │   ├── StorageAuthError    credentials rejected
    │   │   └── ObjectNotFoundError the key does not exist (a missing bucket is permanent)
    │   └── ConflictError           a conditional write lost a race (pointer moved underneath)
    ├── PromotionError              a model may not be promoted (guardrail or policy)
    ├── BusyError                   another process holds the lock (dataset, DVC repository)
    ├── StackError                  the local stack (S3 server, Prefect server) failed to start/stop
    └── TimedOutError               work ran past its limit (``timeouts.*``); also a TimeoutError

The CLI maps each family to its own exit code (see ``EXIT_CODES``).
"""

from __future__ import annotations

from typing import Any


class AmadError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(AmadError):
    """The configuration is invalid; the message names the offending key."""


class DataError(AmadError):
    """Input data cannot be used (wrong shape, NaN, empty, unreadable)."""


class DataValidationError(DataError):
    """A telemetry batch failed validation; ``report`` holds the structured result."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


class DatasetNotFoundError(DataError):
    """A dataset root, layout or entity does not exist."""


class TrainingError(AmadError):
    """Training could not produce a usable model."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the last good checkpoint is left intact."""


class ArtifactError(AmadError):
    """A model bundle is missing files, has a wrong hash, or cannot be read."""


class CorruptPointerError(ArtifactError):
    """The champion pointer exists but cannot be read; ``etag`` is what a repair overwrites."""

    def __init__(self, message: str, etag: str | None = None) -> None:
        super().__init__(message)
        self.etag = etag


class StorageError(AmadError):
    """Object storage failed."""


class TransientStorageError(StorageError):
    """A storage failure worth retrying (timeout, throttling, 5xx, connection refused)."""


class PermanentStorageError(StorageError):
    """A storage failure that retrying will not fix (missing key, access denied)."""


class StorageAuthError(PermanentStorageError):
    """The storage server rejected the credentials."""


class ObjectNotFoundError(PermanentStorageError):
    """The requested key does not exist (its bucket does)."""


class ConflictError(StorageError):
    """A conditional write lost a race: the object changed since it was read."""


class PromotionError(AmadError):
    """A model may not be promoted (failed guardrail or policy)."""


class BusyError(AmadError):
    """Another process holds a lock this operation needs (the dataset, DVC's repository lock)
    for longer than it waited; nothing was changed, retrying later is safe."""


class StackError(AmadError):
    """A local stack service (S3 server, Prefect server) could not be started or stopped."""


class TimedOutError(AmadError, TimeoutError):
    """Work ran past its configured limit (``timeouts.*`` in the config); what it waited on was
    asked to stop (a deployment run is cancelled)."""


# Exit codes used by the CLI; the most specific class listed first wins.
EXIT_CODES: tuple[tuple[type[AmadError], int], ...] = (
    (ConfigError, 2),
    (DataValidationError, 3),
    (DataError, 4),
    (NonFiniteLossError, 5),
    (TrainingError, 5),
    (ArtifactError, 6),
    (StorageAuthError, 7),
    (ConflictError, 8),
    (StorageError, 9),
    (PromotionError, 10),
    (StackError, 11),
    (TimedOutError, 13),
    (BusyError, 12),
    (AmadError, 1),
)


def exit_code_for(error: AmadError) -> int:
    """The CLI exit code for an error, by the most specific listed class."""
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return 1
