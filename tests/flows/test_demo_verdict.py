"""The demo's verdict: a refused model is the system working; a failed entity is not."""

from __future__ import annotations

from typing import Any

import pytest

from flows.demo_steps import verdict
from flows.demo_summary import refusal

NOTE = [{"entity": "e1", "channels": ["m0"]}]


def _row(entity: str, champion: str | None, refused: str | None = None) -> dict[str, Any]:
    return {"entity": entity, "accepted": 2, "champion": champion, "refused": refused}


def test_refusal_is_the_last_decision_that_kept_the_challenger_out() -> None:
    kept = {"entities": {"e3": {"promoted": False, "reason": "does not beat PCA"}}, "failed": {}}
    promoted = {"entities": {"e3": {"promoted": True, "reason": "first model"}}, "failed": {}}
    failed = {"entities": {}, "failed": {"e3": "TrainingError: NaN"}}
    assert refusal([kept], "e3") == "does not beat PCA"
    assert refusal([kept, "NoNewData state"], "e3") == "does not beat PCA"
    assert refusal([kept, promoted], "e3") is None
    assert refusal([kept, failed], "e3") is None
    assert refusal([], "e3") is None


def test_a_refused_entity_is_reported_and_does_not_fail_the_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [_row("e1", "v1"), _row("e3", None, refused="does not beat PCA (0.70 vs 0.72)")]
    assert verdict(rows, NOTE) == 0
    out = capsys.readouterr().out
    assert "NOTE: e3 has no champion" in out and "0.70 vs 0.72" in out
    assert "INCOMPLETE" not in out


def test_an_undecided_entity_or_no_notification_fails_the_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert verdict([_row("e1", "v1"), _row("e2", None)], NOTE) == 1
    assert "DEMO INCOMPLETE: no champion for e2" in capsys.readouterr().out
    assert verdict([_row("e1", "v1")], []) == 1
    assert "no notification" in capsys.readouterr().out
