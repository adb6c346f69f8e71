"""Alerts from per-step flags: contiguous flagged steps become one alert with its reasons.

An entity's scored series gives per-step ``flags`` (score above the threshold), ``scores`` and,
optionally, per-channel normalised errors ``(T, C)`` (each channel's squared error over its
validation scale, see ``amad.detector.attribution``). :func:`find_alerts` merges each run of
flagged steps (runs separated by at most ``merge_gap`` unflagged steps count as one) into an
:class:`Alert`: entity, first and last flagged timestamp, peak score and where it was, the model
and data version, and the ``top_k`` channels ranked by their mean normalised error over the
alert's steps.

The alert id is a hash of (entity, start, end, model version, data version): the same batch
scored twice by the same model yields the same ids, so a store keyed by id (see
``amad.storage.alert_log``) can tell a new alert from one already opened. Pure numpy; no model.

Shape legend: T series steps, C channels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ID_LENGTH = 16


@dataclass(frozen=True)
class Alert:
    """One alert: a merged run of flagged steps of one entity, with the channels that drove it."""

    alert_id: str
    entity: str
    start: str  # timestamp of the first flagged step (ISO 8601 or the step index as text)
    end: str  # timestamp of the last flagged step
    n_steps: int  # steps from start to end inclusive
    peak_score: float
    peak_at: str
    threshold: float
    model_version: str
    data_version: str
    channels: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "error"}], worst first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Alert:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__})


def alert_id(entity: str, start: str, end: str, model_version: str, data_version: str) -> str:
    """A stable id: the same inputs give the same id on every run and machine."""
    text = "\x1f".join((entity, start, end, model_version, data_version))
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def flag_runs(flags: np.ndarray, *, merge_gap: int = 0) -> list[tuple[int, int]]:
    """``[(first, last)]`` inclusive step indices of runs of True in ``flags (T,)``; runs
    separated by at most ``merge_gap`` False steps are merged."""
    f = np.asarray(flags, dtype=bool).ravel()
    if merge_gap < 0:
        raise ValueError(f"merge_gap must be >= 0, got {merge_gap}")
    edges = np.diff(np.concatenate([[0], f.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    runs: list[tuple[int, int]] = []
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        if runs and lo - runs[-1][1] - 1 <= merge_gap:
            runs[-1] = (runs[-1][0], hi)
        else:
            runs.append((lo, hi))
    return runs


def top_channels(
    channel_errors: np.ndarray | None, names: Sequence[str], lo: int, hi: int, k: int
) -> list[dict[str, Any]]:
    """The ``k`` channels with the largest mean normalised error over steps ``lo..hi``."""
    if channel_errors is None or k <= 0:
        return []
    span = np.asarray(channel_errors[lo : hi + 1], dtype=np.float64)  # (steps, C)
    if span.ndim != 2 or span.shape[1] != len(names):
        raise ValueError(f"channel errors have shape {span.shape}, expected (*, {len(names)})")
    known = np.isfinite(span)
    count = known.sum(axis=0)  # (C,) steps with a known error per channel
    total = np.where(known, span, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(len(names), -np.inf), where=count > 0)
    order = np.argsort(-mean, kind="stable")[:k]  # ties keep the channel order
    return [{"name": str(names[i]), "error": float(mean[i])} for i in order if np.isfinite(mean[i])]


def find_alerts(
    *,
    entity: str,
    timestamps: Sequence[Any],
    scores: np.ndarray,
    flags: np.ndarray,
    threshold: float,
    model_version: str,
    data_version: str,
    channel_errors: np.ndarray | None = None,
    channel_names: Sequence[str] = (),
    top_k: int = 3,
    merge_gap: int = 0,
) -> list[Alert]:
    """Alerts of one entity's scored series, in time order (see the module docstring)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(timestamps) != len(s) or len(np.asarray(flags).ravel()) != len(s):
        raise ValueError("timestamps, scores and flags must have the same length")
    stamps = [_stamp(t) for t in timestamps]
    alerts = []
    for lo, hi in flag_runs(flags, merge_gap=merge_gap):
        peak = lo + int(np.nanargmax(s[lo : hi + 1])) if np.isfinite(s[lo : hi + 1]).any() else lo
        start, end = stamps[lo], stamps[hi]
        alerts.append(
            Alert(
                alert_id=alert_id(entity, start, end, model_version, data_version),
                entity=entity,
                start=start,
                end=end,
                n_steps=hi - lo + 1,
                peak_score=float(s[peak]),
                peak_at=stamps[peak],
                threshold=float(threshold),
                model_version=model_version,
                data_version=data_version,
                channels=top_channels(channel_errors, channel_names, lo, hi, top_k),
            )
        )
    return alerts


def _stamp(value: Any) -> str:
    """A timestamp as text: ISO 8601 for datetimes (pandas or numpy), ``str`` otherwise."""
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return str(iso())
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="auto"))
    return str(value)


def alert_table(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """One flat row per alert (for a table artifact or a CSV): channels as ``a, b, c``."""
    return [
        {
            "alert_id": a.alert_id,
            "entity": a.entity,
            "start": a.start,
            "end": a.end,
            "steps": a.n_steps,
            "peak_score": round(a.peak_score, 6),
            "threshold": round(a.threshold, 6),
            "channels": ", ".join(c["name"] for c in a.channels),
            "model_version": a.model_version,
        }
        for a in alerts
    ]
