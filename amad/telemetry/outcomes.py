"""What an ingest did: one ``BatchOutcome`` per batch and the ``IngestReport`` of one call.

A batch ends ``accepted`` (appended to the dataset), ``quarantined`` (rejected, its bytes kept
with the report) or ``duplicate`` (the same bytes were ingested before). The report also holds
the dataset's fingerprint before and after, so a caller knows whether to version the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["accepted", "quarantined", "duplicate"]


@dataclass
class BatchOutcome:
    """What happened to one batch."""

    source: str
    sha256: str
    status: Status
    rows: int
    message: str
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report_dir: str | None = None
    quarantine_dir: str | None = None
    data_version: str | None = None  # after this batch, when the caller versioned the data
    data_docs: str | None = None  # its Data Docs page: s3://... or an absolute local path

    def summary(self) -> dict[str, Any]:
        """One flat row for reports: batch, status, rows, failed checks, warnings, Data Docs."""
        return {
            "batch": self.source,
            "sha256": self.sha256,
            "status": self.status,
            "rows": self.rows,
            "failed": self.failed_checks,
            "warnings": self.warnings,
            "message": self.message,
            "data_docs": self.data_docs,
            "quarantine": self.quarantine_dir,
            "data_version": self.data_version,
        }


@dataclass
class IngestReport:
    """Outcomes of one ``ingest`` call and the dataset fingerprint before and after."""

    outcomes: list[BatchOutcome]
    data_dir: str
    fingerprint_before: str
    fingerprint_after: str

    def _with(self, status: Status) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def accepted(self) -> list[BatchOutcome]:
        return self._with("accepted")

    @property
    def rejected(self) -> list[BatchOutcome]:
        return self._with("quarantined")

    @property
    def duplicates(self) -> list[BatchOutcome]:
        return self._with("duplicate")

    @property
    def changed(self) -> bool:
        return self.fingerprint_before != self.fingerprint_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "fingerprint_before": self.fingerprint_before,
            "fingerprint_after": self.fingerprint_after,
            "changed": self.changed,
            "counts": {s: len(self._with(s)) for s in ("accepted", "quarantined", "duplicate")},
            "outcomes": [asdict(o) for o in self.outcomes],
        }
