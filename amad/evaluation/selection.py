"""Champion vs challenger: a pure decision from two ``Evaluation`` records and a ``PromoteConfig``.

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

``decide`` applies the rules; ``decide_promotion`` is the whole decision a run records: the
bootstrap interval from both evaluations' scores files, ``decide``, the versions compared and the
headline numbers (primary metric of champion, challenger and PCA on the window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from amad.config import PromoteConfig
from amad.evaluation.bootstrap import GainInterval, gain_interval_from_files
from amad.evaluation.records import Evaluation
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
class Headline:
    """The primary metric of champion, challenger and (first model) PCA on the same window."""

    metric: str
    eval_id: str | None
    challenger: float | None
    champion: float | None
    pca: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Headline:
        return cls(str(obj["metric"]), obj.get("eval_id"), obj.get("challenger"),
                   obj.get("champion"), obj.get("pca"))  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """The outcome: promote or not, why, and every number the decision used.

    ``decide`` fills the first five fields; ``decide_promotion`` adds what was compared: the
    challenger's and champion's versions, the champion pointer's generation and the headline.
    """

    promote: bool
    reason: str
    mode: Mode
    numbers: dict[str, float | str | None] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    challenger_version: str | None = None
    champion_version: str | None = None
    champion_generation: int | None = None
    evaluation: Headline | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "numbers": {k: _json_safe(v) for k, v in self.numbers.items()},
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
        }

    def to_json(self) -> str:
        return strict_json(self.to_dict(), indent=None).rstrip("\n")

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Decision:
        generation = obj.get("champion_generation")
        headline = obj.get("evaluation")
        return cls(
            promote=bool(obj["promote"]),
            reason=str(obj["reason"]),
            mode=obj["mode"],
            numbers=dict(obj.get("numbers") or {}),
            checks={str(k): bool(v) for k, v in dict(obj.get("checks") or {}).items()},
            challenger_version=obj.get("challenger_version"),
            champion_version=obj.get("champion_version"),
            champion_generation=None if generation is None else int(generation),
            evaluation=Headline.from_dict(headline) if headline else None,
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _mode(challenger: Evaluation, policy: PromoteConfig) -> Mode:
    return "labelled" if _finite(challenger.metric(policy.primary_metric)) else "label_free"


def _guardrails(challenger: Evaluation, policy: PromoteConfig, mode: Mode) -> list[str]:
    """Reasons the challenger fails a guardrail (empty when it passes)."""
    failures = []
    nonfinite = challenger.nonfinite_scores
    if nonfinite is None or nonfinite != 0:
        failures.append(f"{NONFINITE} must be 0 (got {nonfinite!r})")
    rate = challenger.alert_rate_normal
    if rate is None or not _finite(rate) or rate > policy.max_alert_rate:
        failures.append(f"{ALERT_RATE} {rate!r} exceeds {policy.max_alert_rate} or is missing")
    flagged = challenger.alert_rate
    if mode == "labelled" and (flagged is None or not flagged > policy.min_alert_rate):
        failures.append(
            f"{EVAL_ALERT_RATE} {flagged!r} on a window with labelled "
            f"anomalies must exceed {policy.min_alert_rate} (a threshold that never alerts)"
        )
    if mode == "label_free":
        psi = challenger.score_psi
        if psi is None or not _finite(psi) or psi > policy.max_score_psi:
            failures.append(f"{PSI} {psi!r} exceeds {policy.max_score_psi} or is missing")
        if not _finite(challenger.val_recon_error):
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
    champion: Evaluation | None,
    challenger: Evaluation,
    policy: PromoteConfig,
    *,
    interval: GainInterval | None = None,
) -> Decision:
    """Promote the challenger or keep the champion; see the module docstring for the rules."""
    mode = _mode(challenger, policy)
    key = policy.primary_metric if mode == "labelled" else RECON
    numbers: dict[str, float | str | None] = {
        "challenger": challenger.metric(key),
        "challenger_" + ALERT_RATE: challenger.metric(ALERT_RATE),
        "challenger_" + NONFINITE: challenger.metric(NONFINITE),
        "metric": key,
        EVAL_ID: challenger.eval_id,
    }
    if mode == "label_free":
        numbers["challenger_" + PSI] = challenger.metric(PSI)
    checks: dict[str, bool] = {}

    def out(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, mode, numbers, checks)

    failures = _guardrails(challenger, policy, mode)
    checks["guardrails"] = not failures
    if failures:
        return out(False, "guardrail failed: " + "; ".join(failures))

    if champion is None:
        return _first_model(challenger, policy, mode, key, numbers, checks)

    numbers["champion"] = champion.metric(key)
    checks["same_eval_window"] = _same_window(champion, challenger)
    if not checks["same_eval_window"]:
        return out(
            False,
            f"not comparable: champion {EVAL_ID}={champion.eval_id!r}, "
            f"challenger {EVAL_ID}={challenger.eval_id!r}",
        )
    return _against_champion(
        champion, challenger, policy, interval, mode=mode, key=key, numbers=numbers, checks=checks
    )


def _same_window(champion: Evaluation, challenger: Evaluation) -> bool:
    return challenger.eval_id is not None and champion.eval_id == challenger.eval_id


def _against_champion(
    champion: Evaluation,
    challenger: Evaluation,
    policy: PromoteConfig,
    interval: GainInterval | None,
    *,
    mode: Mode,
    key: str,
    numbers: dict[str, float | str | None],
    checks: dict[str, bool],
) -> Decision:
    """The margin and noise rules of ``decide`` once both were evaluated on the same window
    (filling ``decide``'s ``numbers`` and ``checks``)."""

    def out(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, mode, numbers, checks)

    if mode == "labelled" and interval is not None:
        numbers.update(_interval_numbers(interval))
    gain, margin = _improvement(challenger.metric(key), champion.metric(key), mode, policy)
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
    challenger: Evaluation,
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
    baseline = challenger.metric(PCA_PREFIX + key)
    numbers["pca"] = baseline
    gain, _ = _improvement(challenger.metric(key), baseline, mode, policy)
    numbers["improvement"] = gain
    checks["beats_pca"] = gain is not None and gain > 0
    if gain is None:
        reason = f"first model needs the PCA baseline {PCA_PREFIX + key} on the same window"
        return Decision(False, reason, mode, numbers, checks)
    if not checks["beats_pca"]:
        reason = f"first model does not beat the PCA baseline on {key}"
        return Decision(False, reason, mode, numbers, checks)
    return Decision(True, f"first model beats the PCA baseline on {key}", mode, numbers, checks)


def decide_promotion(
    challenger: Evaluation,
    champion: Evaluation | None,
    policy: PromoteConfig,
    *,
    champion_generation: int | None = None,
) -> Decision:
    """The decision a run records: ``decide`` with the paired bootstrap interval of the gain
    (from both evaluations' scores files; none without a champion or labels, and then the
    point gain decides), the versions compared and the headline numbers.

    ``challenger`` carries the PCA baseline (``with_baseline``) when there is no champion.
    """
    interval = gain_interval_from_files(
        champion.scores_file if champion else None,
        challenger.scores_file,
        n_boot=policy.bootstrap_samples,
        level=policy.bootstrap_level,
    )
    decision = decide(champion, challenger, policy, interval=interval)
    key = policy.primary_metric
    headline = Headline(
        metric=key,
        eval_id=challenger.eval_id,
        challenger=challenger.metric(key),
        champion=champion.metric(key) if champion else None,
        pca=challenger.metric(PCA_PREFIX + key),
    )
    return replace(
        decision,
        challenger_version=challenger.model_version,
        champion_version=champion.model_version if champion else None,
        champion_generation=champion_generation,
        evaluation=headline,
    )


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
