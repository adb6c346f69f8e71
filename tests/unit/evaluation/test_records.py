"""``Evaluation`` keeps the flat JSON form the registry and artifacts record; ``decide_promotion``
assembles the recorded decision (interval, versions, headline) in the library."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from amad.config import PromoteConfig
from amad.evaluation.records import Evaluation
from amad.evaluation.selection import Decision, Headline, decide, decide_promotion

# what stages.evaluate returned (and the flow merged with stages.evaluate_baseline) as dicts
CHALLENGER = {
    "eval_id": "unit-1:abc",
    "nonfinite_scores": 0,
    "alert_rate": 0.06,
    "alert_rate_normal": 0.03,
    "score_psi": 0.04,
    "eval_steps": 400,
    "auc_roc": 0.9,
    "vus_pr": 0.5,
    "val_recon_error": 0.2,
    "scores_file": "runs/x/scores.npz",
    "model_version": "v2",
    "pca_nonfinite_scores": 0,
    "pca_alert_rate": 0.1,
    "pca_alert_rate_normal": 0.05,
    "pca_score_psi": 0.2,
    "pca_eval_steps": 400,
    "pca_auc_roc": 0.7,
    "pca_vus_pr": 0.3,
    "pca_val_recon_error": 0.9,
}
RECORDED_KEYS = [  # the keys the flow's decision dict carried before the record existed
    "promote", "reason", "mode", "numbers", "checks",
    "challenger_version", "champion_version", "champion_generation", "evaluation",
]  # fmt: skip


def test_the_flat_form_round_trips_with_its_keys_in_order() -> None:
    ev = Evaluation.from_dict(CHALLENGER)
    assert ev.to_dict() == CHALLENGER and list(ev.to_dict()) == list(CHALLENGER)
    assert ev.metrics == {"auc_roc": 0.9, "vus_pr": 0.5}
    assert ev.baseline is not None and ev.baseline.eval_id == ev.eval_id
    assert ev.metric("vus_pr") == 0.5 and ev.metric("pca_vus_pr") == 0.3
    assert ev.metric("alert_rate_normal") == 0.03 and ev.metric("f1") is None
    bare = {k: v for k, v in CHALLENGER.items() if not k.startswith("pca_")}
    assert Evaluation.from_dict(bare).baseline is None
    assert ev.baseline.with_baseline(ev.baseline).metric("pca_val_recon_error") == 0.9


def test_missing_or_malformed_numbers_are_none_not_errors() -> None:
    ev = Evaluation.from_dict({"eval_id": "e", "nonfinite_scores": "x", "alert_rate": None})
    assert ev.nonfinite_scores is None and ev.alert_rate is None and ev.eval_steps is None
    assert Evaluation.from_dict({"eval_id": None, "nonfinite_scores": 2.0}).nonfinite_scores == 2
    assert math.isnan(Evaluation.from_dict({"eval_id": "e", "vus_pr": math.nan}).metrics["vus_pr"])


def _scores(root: Path, name: str, lift: float) -> str:
    y = np.zeros(2000, dtype=bool)
    for start in range(100, 2000, 250):
        y[start : start + 20] = True
    noise = np.random.default_rng(0).normal(size=len(y))
    path = root / f"{name}.npz"
    np.savez(path, scores=noise + lift * y, labels=y, threshold=np.float64(1.0))
    return str(path)


def test_decide_promotion_assembles_the_recorded_decision(tmp_path: Path) -> None:
    policy = PromoteConfig(margin=0.01, max_alert_rate=0.1, bootstrap_samples=50)
    base = {k: v for k, v in CHALLENGER.items() if not k.startswith("pca_")}
    champion = Evaluation.from_dict({**base, "vus_pr": 0.3, "model_version": "v1",
                                     "scores_file": _scores(tmp_path, "old", 0.5)})  # fmt: skip
    challenger = Evaluation.from_dict({**base, "scores_file": _scores(tmp_path, "new", 3.0)})
    d = decide_promotion(challenger, champion, policy, champion_generation=4)
    assert d.promote and d.checks["beats_noise"] and d.numbers["gain_ci_low"] > 0
    assert (d.challenger_version, d.champion_version, d.champion_generation) == ("v2", "v1", 4)
    assert d.evaluation == Headline("vus_pr", "unit-1:abc", 0.5, 0.3, None)
    record = d.to_dict()
    assert list(record) == RECORDED_KEYS
    assert record["evaluation"] == {"metric": "vus_pr", "eval_id": "unit-1:abc",
                                    "challenger": 0.5, "champion": 0.3, "pca": None}  # fmt: skip
    assert Decision.from_dict(record) == d
    same_rules = decide(champion, challenger, policy)  # no interval: the point gain alone
    assert same_rules.promote and "gain_ci_low" not in same_rules.numbers


def test_first_model_is_judged_against_the_baseline_it_carries() -> None:
    policy = PromoteConfig(margin=0.01, max_alert_rate=0.1)
    first = decide_promotion(Evaluation.from_dict(CHALLENGER), None, policy)
    assert first.promote and first.numbers["pca"] == 0.3 and first.champion_version is None
    assert first.evaluation is not None and first.evaluation.pca == 0.3
    assert first.champion_generation is None and "gain_ci_low" not in first.numbers
