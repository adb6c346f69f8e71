"""Champion/challenger decision rules, guardrails, PCA gate, JSON round trip, PSI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from amad.config import PromoteConfig
from amad.evaluation.records import Evaluation
from amad.evaluation.selection import Decision, decide, population_stability_index

POLICY = PromoteConfig(margin=0.01, max_alert_rate=0.1)


def labelled(vus: float | None, **kw: object) -> Evaluation:
    base: dict[str, object] = {
        "eval_id": "data-v3:eval",
        "vus_pr": vus,
        "pca_vus_pr": 0.2,
        "nonfinite_scores": 0,
        "alert_rate_normal": 0.02,
        "alert_rate": 0.05,  # on the evaluation window (it has labelled anomalies)
    }
    return Evaluation.from_dict({**base, **kw})


def label_free(recon: float, psi: float = 0.05, **kw: object) -> Evaluation:
    base: dict[str, object] = {
        "eval_id": "data-v3:eval",
        "val_recon_error": recon,
        "pca_val_recon_error": 1.0,
        "score_psi": psi,
        "nonfinite_scores": 0,
        "alert_rate_normal": 0.02,
    }
    return Evaluation.from_dict({**base, **kw})


def test_challenger_must_beat_champion_by_more_than_the_margin() -> None:
    win = decide(labelled(0.40), labelled(0.45), POLICY)
    assert win.promote and win.mode == "labelled"
    assert win.numbers["improvement"] == pytest.approx(0.05)
    assert not decide(labelled(0.40), labelled(0.405), POLICY).promote  # within margin
    assert not decide(labelled(0.40), labelled(0.40), PromoteConfig(margin=0.0)).promote  # tie
    assert not decide(labelled(0.40), labelled(0.30), POLICY).promote


def test_different_eval_windows_are_not_compared() -> None:
    d = decide(labelled(0.1, eval_id="data-v2:eval"), labelled(0.9), POLICY)
    assert not d.promote and "not comparable" in d.reason
    assert d.checks["same_eval_window"] is False
    assert not decide(labelled(0.1, eval_id=None), labelled(0.9), POLICY).promote


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"nonfinite_scores": 3}, "nonfinite_scores"),
        ({"nonfinite_scores": None}, "nonfinite_scores"),
        ({"alert_rate_normal": 0.5}, "alert_rate_normal"),
        ({"alert_rate_normal": math.nan}, "alert_rate_normal"),
        ({"alert_rate_normal": None}, "alert_rate_normal"),
    ],
)
def test_guardrails_block_even_a_better_challenger(
    override: dict[str, object], fragment: str
) -> None:
    d = decide(labelled(0.1), labelled(0.9, **override), POLICY)
    assert not d.promote and "guardrail" in d.reason and fragment in d.reason
    assert d.checks["guardrails"] is False


def test_first_model_needs_to_beat_pca() -> None:
    assert decide(None, labelled(0.3), POLICY).promote
    below = decide(None, labelled(0.15), POLICY)
    assert not below.promote and "PCA" in below.reason and below.numbers["pca"] == 0.2
    missing = decide(None, labelled(0.9, pca_vus_pr=None), POLICY)
    assert not missing.promote and "pca_vus_pr" in missing.reason
    free = PromoteConfig(require_beats_pca=False)
    assert decide(None, labelled(0.15), free).promote


def test_label_free_criterion() -> None:
    policy = PromoteConfig(label_free_margin=0.05, max_score_psi=0.25)
    d = decide(label_free(0.50), label_free(0.40), policy)  # 20 % lower error
    assert d.promote and d.mode == "label_free" and d.numbers["metric"] == "val_recon_error"
    assert d.numbers["improvement"] == pytest.approx(0.2)
    assert not decide(label_free(0.50), label_free(0.49), policy).promote  # only 2 %
    unstable = decide(label_free(0.50), label_free(0.10, psi=0.6), policy)
    assert not unstable.promote and "score_psi" in unstable.reason
    assert decide(None, label_free(0.5), policy).promote  # beats PCA's 1.0
    assert not decide(None, label_free(1.5), policy).promote


def test_nan_primary_metric_falls_back_to_label_free() -> None:
    d = decide(None, label_free(0.5, vus_pr=math.nan), POLICY)
    assert d.mode == "label_free" and d.promote


def test_decision_round_trips_through_json() -> None:
    d = decide(labelled(0.4), labelled(0.5, alert_rate_normal=math.inf), POLICY)
    text = d.to_json()  # strict JSON: non-finite numbers become null
    back = Decision.from_dict(json.loads(text))
    assert back.promote == d.promote and back.reason == d.reason and back.checks == d.checks
    assert json.loads(text)["numbers"]["challenger_alert_rate_normal"] is None


def test_population_stability_index() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert population_stability_index(ref, rng.normal(size=5000)) < 0.02
    assert population_stability_index(ref, rng.normal(loc=2.0, size=5000)) > 0.25
    assert population_stability_index(ref, np.array([np.nan])) == math.inf
    constant = population_stability_index(np.ones(100), np.ones(50))
    assert constant == pytest.approx(0.0)
