"""Champion vs challenger: a pure decision from two metric dicts and a ``PromoteConfig``.

Both candidates must have been scored on the same held-out evaluation window of the same data
version (the ``eval_id`` key, e.g. ``"<data version>:<window>"``). The challenger is promoted
only if it passes every guardrail and wins on the criterion for the data at hand:

- **labelled** (the primary metric, ``vus_pr`` by default, is present and finite for the
  challenger): the challenger's primary metric must exceed the champion's by more than
  ``policy.margin`` (absolute; higher is better).
- **label-free** (no labels in the evaluation window): the challenger's validation
  reconstruction error (``val_recon_error``, lower is better) must be lower than the champion's
  by more than ``policy.label_free_margin`` (relative), and its score distribution must be
  stable: the population stability index between its validation-period scores and its scores
  on the recent window (``score_psi``, see ``population_stability_index``) at most
  ``policy.max_score_psi``. A model whose scores shift a lot on data that should look normal
  would alert on drift rather than on anomalies.

Noise (labelled, with a champion, when ``interval`` is given): the paired block-bootstrap
interval of the challenger's gain (``amad.evaluation.bootstrap.gain_interval``, over blocks of
the evaluation window that never split an event) must lie entirely above 0; the interval is
recorded in the decision's numbers (``gain_ci_low``/``gain_ci_high``) either way.

Guardrails (always): no non-finite scores (``nonfinite_scores == 0``), every metric used finite,
and the alert rate on recent normal data (``alert_rate_normal``) at most
``policy.max_alert_rate``. Labelled: the threshold must flag more than ``policy.min_alert_rate``
of the evaluation window (``alert_rate``): a model that never alerts on a window with labelled
anomalies is never promoted, however its scores rank. With no champion yet, the challenger must instead beat the PCA
baseline scored on the same window (``pca_vus_pr`` / ``pca_val_recon_error``) when
``policy.require_beats_pca``. Every ``Decision`` carries its numbers and serialises to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from amad.config import PromoteConfig
from amad.evaluation.bootstrap import GainInterval
from amad.files import strict_json

EVAL_ID = "eval_id"
NONFINITE = "nonfinite_scores"
ALERT_RATE = "alert_rate_normal"
EVAL_ALERT_RATE = "alert_rate"
RECON = "val_recon_error"
PSI = "score_psi"
PCA_PREFIX = "pca_"

Mode = Literal["labelled", "label_free"]


@dataclass(frozen=True)
class Decision:
    """The outcome: promote or not, why, and every number the decision used."""

    promote: bool
    reason: str
    mode: Mode
    numbers: dict[str, float | str | None] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "numbers": {k: _json_safe(v) for k, v in self.numbers.items()},
        }

    def to_json(self) -> str:
        return strict_json(self.to_dict(), indent=None).rstrip("\n")

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Decision:
        return cls(
            promote=bool(obj["promote"]),
            reason=str(obj["reason"]),
            mode=obj["mode"],
            numbers=dict(obj.get("numbers") or {}),
            checks={str(k): bool(v) for k, v in dict(obj.get("checks") or {}).items()},
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    """A metric as float; None when absent or not a number."""
    if metrics is None or metrics.get(key) is None:
        return None
    try:
        return float(metrics[key])
    except (TypeError, ValueError):
        return None


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _mode(challenger: Mapping[str, Any], policy: PromoteConfig) -> Mode:
    return "labelled" if _finite(_num(challenger, policy.primary_metric)) else "label_free"


def _guardrails(challenger: Mapping[str, Any], policy: PromoteConfig, mode: Mode) -> list[str]:
    """Reasons the challenger fails a guardrail (empty when it passes)."""
    failures = []
    nonfinite = _num(challenger, NONFINITE)
    if nonfinite is None or nonfinite != 0:
        failures.append(f"{NONFINITE} must be 0 (got {challenger.get(NONFINITE)!r})")
    rate = _num(challenger, ALERT_RATE)
    if not _finite(rate) or rate is None or rate > policy.max_alert_rate:
        failures.append(
            f"{ALERT_RATE} {challenger.get(ALERT_RATE)!r} exceeds {policy.max_alert_rate} "
            "or is missing"
        )
    flagged = _num(challenger, EVAL_ALERT_RATE)
    if mode == "labelled" and (flagged is None or not flagged > policy.min_alert_rate):
        failures.append(
            f"{EVAL_ALERT_RATE} {challenger.get(EVAL_ALERT_RATE)!r} on a window with labelled "
            f"anomalies must exceed {policy.min_alert_rate} (a threshold that never alerts)"
        )
    if mode == "label_free":
        psi = _num(challenger, PSI)
        if not _finite(psi) or psi is None or psi > policy.max_score_psi:
            failures.append(
                f"{PSI} {challenger.get(PSI)!r} exceeds {policy.max_score_psi} or is missing"
            )
        if not _finite(_num(challenger, RECON)):
            failures.append(f"{RECON} is missing or not finite")
    return failures


def _improvement(
    new: float | None, old: float | None, mode: Mode, policy: PromoteConfig
) -> tuple[float | None, float]:
    """(improvement, required margin): absolute gain, or relative reduction when label-free."""
    if not (_finite(new) and _finite(old)) or new is None or old is None:
        return None, 0.0
    if mode == "labelled":
        return new - old, policy.margin
    return (old - new) / old if old > 0 else -math.inf, policy.label_free_margin


def decide(
    champion: Mapping[str, Any] | None,
    challenger: Mapping[str, Any],
    policy: PromoteConfig,
    *,
    interval: GainInterval | None = None,
) -> Decision:
    """Promote the challenger or keep the champion; see the module docstring for the rules."""
    mode = _mode(challenger, policy)
    key = policy.primary_metric if mode == "labelled" else RECON
    numbers: dict[str, float | str | None] = {
        "challenger": _num(challenger, key),
        "challenger_" + ALERT_RATE: _num(challenger, ALERT_RATE),
        "challenger_" + NONFINITE: _num(challenger, NONFINITE),
        "metric": key,
        EVAL_ID: challenger.get(EVAL_ID),
    }
    if mode == "label_free":
        numbers["challenger_" + PSI] = _num(challenger, PSI)
    checks: dict[str, bool] = {}

    def out(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, mode, numbers, checks)

    failures = _guardrails(challenger, policy, mode)
    checks["guardrails"] = not failures
    if failures:
        return out(False, "guardrail failed: " + "; ".join(failures))

    if champion is None:
        return _first_model(challenger, policy, mode, key, numbers, checks)

    numbers["champion"] = _num(champion, key)
    same_window = challenger.get(EVAL_ID) is not None and (
        champion.get(EVAL_ID) == challenger.get(EVAL_ID)
    )
    checks["same_eval_window"] = same_window
    if not same_window:
        return out(
            False,
            f"not comparable: champion {EVAL_ID}={champion.get(EVAL_ID)!r}, "
            f"challenger {EVAL_ID}={challenger.get(EVAL_ID)!r}",
        )
    if mode == "labelled" and interval is not None:
        numbers.update(_interval_numbers(interval))
    gain, margin = _improvement(_num(challenger, key), _num(champion, key), mode, policy)
    numbers["improvement"], numbers["margin"] = gain, margin
    checks["beats_champion"] = gain is not None and gain > margin
    if gain is None:
        return out(False, f"{key} missing or not finite for the champion or challenger")
    if not checks["beats_champion"]:
        return out(False, f"challenger does not beat the champion on {key} by more than {margin}")
    if mode == "labelled" and interval is not None:
        checks["beats_noise"] = interval.low > 0
        if not checks["beats_noise"]:
            return out(False, f"gain within noise: {interval.metric} gain {interval.gain:.4g}, "
                              f"{interval.level:.0%} interval [{interval.low:.4g}, "
                              f"{interval.high:.4g}] does not exclude 0")  # fmt: skip
    return out(True, f"challenger beats the champion on {key} by {gain:.4g} (> {margin})")


def _interval_numbers(interval: GainInterval) -> dict[str, float | str | None]:
    return {"gain_ci_metric": interval.metric, "gain_ci_gain": interval.gain,
            "gain_ci_low": interval.low, "gain_ci_high": interval.high,
            "gain_ci_level": interval.level, "gain_ci_used": float(interval.n_used)}  # fmt: skip


def _first_model(
    challenger: Mapping[str, Any],
    policy: PromoteConfig,
    mode: Mode,
    key: str,
    numbers: dict[str, float | str | None],
    checks: dict[str, bool],
) -> Decision:
    """No champion yet: promote when the challenger beats the PCA baseline (if required)."""
    if not policy.require_beats_pca:
        checks["beats_pca"] = True
        return Decision(True, "first model (PCA baseline not required)", mode, numbers, checks)
    baseline = _num(challenger, PCA_PREFIX + key)
    numbers["pca"] = baseline
    gain, _ = _improvement(_num(challenger, key), baseline, mode, policy)
    numbers["improvement"] = gain
    checks["beats_pca"] = gain is not None and gain > 0
    if gain is None:
        reason = f"first model needs the PCA baseline {PCA_PREFIX + key} on the same window"
        return Decision(False, reason, mode, numbers, checks)
    if not checks["beats_pca"]:
        reason = f"first model does not beat the PCA baseline on {key}"
        return Decision(False, reason, mode, numbers, checks)
    return Decision(True, f"first model beats the PCA baseline on {key}", mode, numbers, checks)


def population_stability_index(reference: np.ndarray, recent: np.ndarray, bins: int = 10) -> float:
    """PSI of ``recent`` against ``reference`` on the reference's quantile bins (0 = identical).

    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift. Non-finite values
    are dropped; an empty input gives ``inf``.
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    new = np.asarray(recent, dtype=np.float64).ravel()
    ref, new = ref[np.isfinite(ref)], new[np.isfinite(new)]
    if ref.size == 0 or new.size == 0:
        return math.inf
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)))
    inner = edges[1:-1]  # open-ended outer bins catch values outside the reference range
    p = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=inner.size + 1)
    q = np.bincount(np.searchsorted(inner, new, side="right"), minlength=inner.size + 1)
    eps = 1e-6
    p_frac = np.clip(p / ref.size, eps, None)
    q_frac = np.clip(q / new.size, eps, None)
    return float(np.sum((q_frac - p_frac) * np.log(q_frac / p_frac)))
