"""``Evaluation``: one model scored on one evaluation window, as a typed record.

What ``amad.stages.evaluate`` measures (and ``evaluate_baseline`` for the PCA baseline on the
same window), what the champion/challenger decision reads, and what the flows pass between
tasks. ``to_dict()`` is the flat JSON form recorded in ``metrics.json``, the registry's decision
records and the comparison artifact (its keys are the metric names the decision rules and
``promote.primary_metric`` name); ``from_dict()`` reads it back, tolerating missing metrics (a
missing guardrail metric is a failed guardrail, never a crash).

Flat form, in this order: ``eval_id``, ``nonfinite_scores``, ``alert_rate``,
``alert_rate_normal``, ``score_psi``, ``eval_steps``, the labelled metrics (``vus_pr``,
``auc_roc``, ...; none on a label-free window), ``val_recon_error``, then ``scores_file`` and
``model_version`` when set, then the baseline's metrics prefixed ``pca_`` (without its
``eval_id``: it is the same window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

BASELINE_PREFIX = "pca_"
_HEAD = ("nonfinite_scores", "alert_rate", "alert_rate_normal", "score_psi", "eval_steps")
_TAIL = ("val_recon_error",)
_IDENTITY = ("scores_file", "model_version")
_FIELDS = frozenset(("eval_id", *_HEAD, *_TAIL, *_IDENTITY))


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model on one evaluation window (``None``: not measured)."""

    eval_id: str | None  # "<entity>:<window set fingerprint>": same id, comparable numbers
    eval_steps: int | None = None  # steps scored in the evaluation window
    nonfinite_scores: int | None = None  # NaN/inf scores (a guardrail: must be 0)
    alert_rate: float | None = None  # share of the window above the threshold
    alert_rate_normal: float | None = None  # the same on steps labelled normal (all when no labels)
    score_psi: float | None = None  # PSI of validation-period scores vs the window's
    val_recon_error: float | None = None  # mean validation reconstruction error (PCA: score)
    metrics: Mapping[str, float] = field(default_factory=dict)  # labelled: vus_pr, auc_roc, ...
    scores_file: str | None = None  # per-step scores (npz: scores, threshold, labels)
    model_version: str | None = None  # the registry version scored, when it is one
    baseline: Evaluation | None = None  # the PCA baseline on the same window

    def metric(self, name: str) -> float | None:
        """A number by its flat name (``vus_pr``, ``alert_rate``, ``pca_vus_pr``, ...)."""
        if name.startswith(BASELINE_PREFIX) and name not in self.metrics:
            inner = name[len(BASELINE_PREFIX) :]
            return self.baseline.metric(inner) if self.baseline is not None else None
        value = getattr(self, name) if name in _HEAD or name in _TAIL else self.metrics.get(name)
        return None if value is None else float(value)

    def with_baseline(self, baseline: Evaluation) -> Evaluation:
        """This evaluation with the PCA baseline scored on the same window."""
        return replace(self, baseline=baseline)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"eval_id": self.eval_id}
        out.update(self._numbers())
        for name in _IDENTITY:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.baseline is not None:
            out.update({BASELINE_PREFIX + k: v for k, v in self.baseline._numbers().items()})
        return out

    def _numbers(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in _HEAD},
            **self.metrics,
            **{name: getattr(self, name) for name in _TAIL},
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Evaluation:
        own = {k: v for k, v in obj.items() if not k.startswith(BASELINE_PREFIX)}
        pca = {
            k[len(BASELINE_PREFIX) :]: v for k, v in obj.items() if k.startswith(BASELINE_PREFIX)
        }
        return cls(
            eval_id=_text(own.get("eval_id")),
            eval_steps=_count(own.get("eval_steps")),
            nonfinite_scores=_count(own.get("nonfinite_scores")),
            alert_rate=_float(own.get("alert_rate")),
            alert_rate_normal=_float(own.get("alert_rate_normal")),
            score_psi=_float(own.get("score_psi")),
            val_recon_error=_float(own.get("val_recon_error")),
            metrics={k: f for k, v in own.items() if k not in _FIELDS and (f := _float(v)) is not None},
            scores_file=_text(own.get("scores_file")),
            model_version=_text(own.get("model_version")),
            baseline=cls.from_dict({"eval_id": own.get("eval_id"), **pca}) if pca else None,
        )  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float | None:
    """A number as float; None when absent or not a number (what the guardrails then refuse)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _count(value: Any) -> int | None:
    """A count as int; None when absent, not a number or not a whole one."""
    number = _float(value)
    return (
        int(number)
        if number is not None and math.isfinite(number) and number.is_integer()
        else None
    )
