"""benchmarks/bars.py: issue 9's raw and fair bars from a results.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _bars_module() -> Any:
    spec = importlib.util.spec_from_file_location("bars", ROOT / "benchmarks" / "bars.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc(values: dict[str, dict[str, tuple[float, float]]]) -> dict[str, Any]:
    """entity -> detector -> (vus_pr, auc_roc) as a results.json."""
    return {"entities": {
        e: {d: {"status": "ok", "metrics": {"vus_pr": v, "auc_roc": a}} for d, (v, a) in row.items()}
        for e, row in values.items()
    }}  # fmt: skip


def test_bars_pick_the_best_raw_and_smoothed_baselines_per_group() -> None:
    bars = _bars_module()
    doc = _doc({
        "a": {"amad": (0.6, 0.9), "pca": (0.4, 0.8), "ar": (0.3, 0.7), "ar-smooth": (0.5, 0.96)},
        "b": {"amad": (0.8, 0.9), "pca": (0.2, 0.8), "ar": (0.5, 0.7), "ar-smooth": (0.9, 0.85)},
        "c": {"amad": (0.0, 0.5), "pca": (0.1, 0.5), "ar": (0.1, 0.5)},
    })  # fmt: skip
    doc["entities"]["c"]["ar-smooth"] = {"status": "failed"}  # out of every mean of the group
    out = bars.bars(doc, ["a", "b", "c"])
    assert out["n"] == 2 and out["vus_pr"] == pytest.approx(0.7)
    assert out["raw"]["best"] == "ar" and out["raw"]["vus_pr"] == pytest.approx(0.4)
    assert out["raw"]["ratio"] == pytest.approx(1.75) and out["raw"]["met"]
    assert out["fair"]["best"] == "ar-smooth" and out["fair"]["ratio"] == pytest.approx(0.7 / 0.7)
    assert not out["fair"]["met"]  # 1.00x < 1.05x
    assert out["auc"]["best"] == "ar-smooth" and not out["auc"]["met"]  # 0.905 > 0.9
    lines = bars.table(doc, {"a"})
    assert len(lines) == 5 and lines[2].startswith("| dev | 1 |") and "not met" in lines[4]
