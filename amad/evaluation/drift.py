"""Drift findings: a batch's metrics, or a model's scores, moved away from their reference.

Two sources, one record (``DriftFinding``, one per drifted subject per batch):

- **telemetry** (:func:`metric_drift`): the contract's ``drift_mean`` and ``drift_std`` checks of
  one batch's validation report (failed, as warnings or errors) against the dataset's reference
  statistics. Size: the batch mean's distance from the reference mean in reference standard
  deviations (``z``, signed; drifted when ``|z| > contract.drift_mean_tolerance``), and the ratio
  of the batch std to the reference std (drifted when it is beyond ``drift_std_ratio_tolerance``
  either way). A metric failing both checks is *one* finding (its ``checks`` hold both; the mean
  is the headline).
- **scores** (:func:`score_drift`): a model's population stability index between its
  validation-period scores and its scores on the recent evaluation window (``score_psi`` of an
  ``Evaluation``) above ``promote.max_score_psi``. Subject ``"score"``.

``key`` names a finding uniquely (batch and subject), so a log of findings written create-only
(``amad.storage.drift_log``) tells new drift from drift already announced. Pure Python.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from amad.config import ContractConfig
from amad.evaluation.records import Evaluation

DRIFT_CHECKS = ("drift_mean", "drift_std")
SCORE = "score"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@,-]")


@dataclass(frozen=True)
class DriftFinding:
    """One drifted metric (or ``"score"``) of one batch (or evaluation window)."""

    subject: str  # the metric column, or "score"
    statistic: str  # "mean" (size: z), "std" (size: std ratio), "psi"
    size: float
    threshold: float
    batch: str  # the batch's sha256; for scores the evaluation window id
    data_version: str | None = None
    entities: tuple[str, ...] = ()
    model_version: str | None = None
    checks: dict[str, dict[str, float]] = field(default_factory=dict)  # check -> size, threshold

    @property
    def key(self) -> str:
        """``<batch>/<subject>`` with unsafe characters as ``_``: unique per batch and subject
        (for scores, per model version too)."""
        batch = self.batch if self.model_version is None or self.subject != SCORE else (
            f"{self.batch}@{self.model_version}"
        )  # fmt: skip
        return f"{_UNSAFE.sub('_', batch) or '_'}/{_UNSAFE.sub('_', self.subject) or '_'}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "entities": list(self.entities), "key": self.key}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> DriftFinding:
        return cls(
            subject=str(obj["subject"]), statistic=str(obj["statistic"]),
            size=float(obj["size"]), threshold=float(obj["threshold"]), batch=str(obj["batch"]),
            data_version=obj.get("data_version"), entities=tuple(obj.get("entities") or ()),
            model_version=obj.get("model_version"), checks=dict(obj.get("checks") or {}),
        )  # fmt: skip


def _size(check: str, observed: float, ref: Mapping[str, float], c: ContractConfig) -> tuple[
    str, float, float
]:  # fmt: skip
    """(statistic, size, threshold) of one failed drift check."""
    mean, std = float(ref["mean"]), float(ref["std"])
    if check == "drift_mean":
        return "mean", (observed - mean) / std, c.drift_mean_tolerance
    return "std", observed / std, c.drift_std_ratio_tolerance


def metric_drift(
    report: Mapping[str, Any],
    reference: Mapping[str, Mapping[str, float]] | None,
    contract: ContractConfig,
    *,
    batch: str,
    data_version: str | None = None,
    entities: Iterable[str] = (),
) -> list[DriftFinding]:
    """The drifted metrics of one validation report (``ValidationReport.to_dict()``), one
    finding per metric, in column order; none without reference statistics."""
    if not reference:
        return []
    found: dict[str, dict[str, tuple[str, float, float]]] = {}
    for entry in [*report.get("errors", []), *report.get("warnings", [])]:
        column, observed = entry.get("column"), entry.get("observed")
        ref = reference.get(str(column)) if column is not None else None
        if entry.get("check") not in DRIFT_CHECKS or ref is None:
            continue
        if not isinstance(observed, int | float) or not float(ref.get("std", 0.0)) > 0.0:
            continue  # not evaluated (a missing column), or no usable reference
        found.setdefault(str(column), {})[entry["check"]] = _size(
            entry["check"], float(observed), ref, contract
        )
    order = {c.name: i for i, c in enumerate(contract.columns)}
    out = []
    for column in sorted(found, key=lambda name: (order.get(name, len(order)), name)):
        checks = found[column]
        statistic, size, threshold = checks.get("drift_mean") or checks["drift_std"]
        out.append(DriftFinding(
            subject=column, statistic=statistic, size=size, threshold=threshold, batch=batch,
            data_version=data_version, entities=tuple(sorted(entities)),
            checks={k: {"size": v[1], "threshold": v[2]} for k, v in sorted(checks.items())},
        ))  # fmt: skip
    return out


def score_drift(
    evaluation: Evaluation,
    max_psi: float,
    *,
    entity: str | None = None,
    data_version: str | None = None,
) -> DriftFinding | None:
    """A finding when the evaluation's score PSI is finite and above ``max_psi``, else None."""
    psi = evaluation.score_psi
    if psi is None or not math.isfinite(psi) or psi <= max_psi:
        return None
    return DriftFinding(
        subject=SCORE, statistic="psi", size=float(psi), threshold=float(max_psi),
        batch=str(evaluation.eval_id), data_version=data_version,
        entities=(entity,) if entity is not None else (), model_version=evaluation.model_version,
        checks={"score_psi": {"size": float(psi), "threshold": float(max_psi)}},
    )  # fmt: skip
