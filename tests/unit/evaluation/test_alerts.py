"""Flags to alerts: runs merged, peak and top channels, ids stable across runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amad.evaluation.alerts import Alert, alert_id, alert_table, find_alerts, flag_runs

NAMES = ["cpu", "mem", "disk", "net"]


def _series(n: int = 40) -> dict:
    flags = np.zeros(n, dtype=bool)
    flags[5:9] = True  # one run
    flags[20:22] = True
    flags[24:26] = True  # a second and third run, 2 steps apart
    scores = np.linspace(0.0, 1.0, n)
    scores[7] = 9.0
    errors = np.ones((n, len(NAMES)))
    errors[5:9, 2] = 50.0  # disk drove the first alert
    errors[5:9, 0] = 10.0  # then cpu
    errors[20:26, 3] = 7.0  # net drove the later ones
    stamps = list(pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC"))
    return {"timestamps": stamps, "scores": scores, "flags": flags, "channel_errors": errors}


def _find(**kwargs: object) -> list[Alert]:
    args = {"entity": "m-1", "threshold": 0.5, "model_version": "v1", "data_version": "d1",
            "channel_names": NAMES, "top_k": 2, **_series(), **kwargs}  # fmt: skip
    return find_alerts(**args)  # type: ignore[arg-type]


def test_runs_and_gap_merging() -> None:
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert flag_runs(flags) == [(1, 2), (5, 5), (7, 9)]
    assert flag_runs(flags, merge_gap=1) == [(1, 2), (5, 9)]
    assert flag_runs(flags, merge_gap=2) == [(1, 9)]
    assert flag_runs(np.zeros(5, dtype=bool)) == []
    assert flag_runs(np.ones(3, dtype=bool)) == [(0, 2)]
    with pytest.raises(ValueError):
        flag_runs(flags, merge_gap=-1)


def test_one_alert_per_run_with_its_peak_and_channels() -> None:
    alerts = _find()
    assert len(alerts) == 3
    first = alerts[0]
    assert (first.entity, first.n_steps, first.peak_score) == ("m-1", 4, 9.0)
    assert first.start == "2026-01-01T00:05:00+00:00" and first.end == "2026-01-01T00:08:00+00:00"
    assert first.peak_at == "2026-01-01T00:07:00+00:00"
    assert [c["name"] for c in first.channels] == ["disk", "cpu"]
    assert first.channels[0]["error"] == pytest.approx(50.0)
    assert alerts[1].channels[0]["name"] == "net"
    assert len(_find(merge_gap=2)) == 2


def test_ids_are_stable_and_depend_on_what_identifies_an_alert() -> None:
    a, b = _find(), _find()
    assert [x.alert_id for x in a] == [x.alert_id for x in b]
    assert len({x.alert_id for x in a}) == 3
    assert _find(model_version="v2")[0].alert_id != a[0].alert_id
    assert _find(data_version="d2")[0].alert_id != a[0].alert_id
    assert _find(entity="m-2")[0].alert_id != a[0].alert_id
    assert alert_id("e", "s", "t", "v", "d") == alert_id("e", "s", "t", "v", "d")


def test_round_trip_and_table() -> None:
    first = _find()[0]
    assert Alert.from_dict(first.to_dict()) == first
    row = alert_table([first])[0]
    assert row["channels"] == "disk, cpu" and row["alert_id"] == first.alert_id


def test_without_channel_errors_and_bad_shapes() -> None:
    assert _find(channel_errors=None)[0].channels == []
    with pytest.raises(ValueError):
        _find(channel_names=NAMES[:2])
    with pytest.raises(ValueError):
        _find(timestamps=list(range(3)))


def test_nan_errors_are_ignored_in_the_ranking() -> None:
    errors = _series()["channel_errors"]
    errors[5:9, 2] = np.nan  # disk unknown: cpu leads
    assert _find(channel_errors=errors)[0].channels[0]["name"] == "cpu"
