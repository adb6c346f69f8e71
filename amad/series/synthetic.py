"""Seeded multivariate telemetry with labelled anomalies: the embedded default data.

The *system* (loadings, seasonal amplitudes and phases, channel offsets and scales) is drawn from
``SyntheticConfig.seed`` alone, so every call with the same config describes the same fleet
member. The *sample* (AR innovations, white noise, anomaly placement) is drawn from
``(seed, start_step)``, so consecutive batches differ but any batch is reproducible.

Signal, in channel-standardised units before the per-channel offset and scale::

    u[t, c] = sum_k L[c, k] * f_k(t) / s_c + noise
    f_k(t)  = daily (2 harmonics) + weekly sinusoids + fast cycle + AR(1), trend-free

Anomalies (``AnomalyEvent``; ``end`` is exclusive, labels are 1 on ``start:end``) are injected
in those units, where one unit is about one standard deviation of the channel: spike,
level_shift, drift, frequency_change, correlation_break, flatline, noise_burst.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from amad.config import ANOMALY_KINDS, SyntheticConfig
from amad.series.data import SeriesData, make_series

log = logging.getLogger(__name__)

DAY_S = 86_400
# (min, max) length in steps of each kind; a budget-capped event never goes below min.
KIND_LENGTHS: dict[str, tuple[int, int]] = {
    "spike": (1, 3),
    "level_shift": (20, 150),
    "drift": (40, 200),
    "frequency_change": (40, 200),
    "correlation_break": (40, 200),
    "flatline": (30, 200),
    "noise_burst": (20, 100),
}


@dataclass(frozen=True)
class AnomalyEvent:
    """One injected anomaly: steps ``start:end`` (end exclusive) on ``channels``."""

    kind: str
    start: int
    end: int
    channels: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "channels": list(self.channels),
        }


@dataclass(frozen=True)
class SyntheticSeries:
    """Generated values (n_steps, C) float32, labels (n_steps,) int8 and the injected events."""

    values: np.ndarray
    labels: np.ndarray
    events: list[AnomalyEvent] = field(default_factory=list)


@dataclass(frozen=True)
class _System:
    """The seed-fixed structure of one synthetic entity (factor k, channel c)."""

    loadings: np.ndarray  # (c, k), rows of unit norm
    daily: np.ndarray  # (k, 4): amp1, phase1, amp2, phase2
    weekly: np.ndarray  # (k, 2): amp, phase
    fast: np.ndarray  # (k, 3): amp, period in steps, phase
    ar: np.ndarray  # (k, 2): phi, stationary std
    idio_std: float
    struct_std: np.ndarray  # (c,) theoretical std of the structured part
    offset: np.ndarray  # (c,)
    scale: np.ndarray  # (c,)


def _system(cfg: SyntheticConfig) -> _System:
    rng = np.random.default_rng([cfg.seed, 7919])
    k, c = cfg.n_factors, cfg.n_channels
    loadings = rng.normal(size=(c, k))
    loadings /= np.linalg.norm(loadings, axis=1, keepdims=True)
    a1 = rng.uniform(0.6, 1.2, k)
    daily = np.stack([a1, rng.uniform(0, 2 * np.pi, k), a1 * rng.uniform(0, 0.4, k),
                      rng.uniform(0, 2 * np.pi, k)], axis=1)  # fmt: skip
    weekly = np.stack([rng.uniform(0.2, 0.5, k), rng.uniform(0, 2 * np.pi, k)], axis=1)
    fast = np.stack(
        [rng.uniform(0.3, 0.7, k), rng.uniform(24, 90, k), rng.uniform(0, 2 * np.pi, k)], axis=1
    )
    ar = np.stack([rng.uniform(0.95, 0.995, k), rng.uniform(0.3, 0.6, k)], axis=1)
    idio_std = 0.2
    factor_var = (daily[:, 0] ** 2 + daily[:, 2] ** 2 + weekly[:, 0] ** 2 + fast[:, 0] ** 2) / 2
    factor_var += ar[:, 1] ** 2
    struct_std = np.sqrt(loadings**2 @ factor_var + idio_std**2)
    scale = 10 ** rng.uniform(-0.5, 1.0, c)
    offset = scale * rng.uniform(2.0, 6.0, c)
    return _System(loadings, daily, weekly, fast, ar, idio_std, struct_std, offset, scale)


def _ar1(rng: np.random.Generator, phi: float, std: float, n: int) -> np.ndarray:
    """A stationary AR(1) path with marginal std ``std``."""
    innovations = rng.normal(0.0, std * np.sqrt(1 - phi**2), n)
    x_prev = rng.normal(0.0, std)
    out, _ = lfilter([1.0], [1.0, -phi], innovations, zi=[phi * x_prev])
    return np.asarray(out)


def _fast_factors(sys: _System, t: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Fast cycles (t, k); ``speed`` multiplies every frequency."""
    amp, period, phase = sys.fast[:, 0], sys.fast[:, 1], sys.fast[:, 2]
    return np.asarray(amp * np.sin(2 * np.pi * speed * t[:, None] / period + phase))


def _components(
    sys: _System, cfg: SyntheticConfig, t: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Channel-standardised parts (t, c): seasonal, fast, ar (incl. idiosyncratic), noise."""
    day = DAY_S / cfg.cadence_s  # steps per day
    w_d, w_w = 2 * np.pi * t[:, None] / day, 2 * np.pi * t[:, None] / (7 * day)
    d, wk = sys.daily, sys.weekly
    seasonal_f = d[:, 0] * np.sin(w_d + d[:, 1]) + d[:, 2] * np.sin(2 * w_d + d[:, 3])
    seasonal_f = seasonal_f + wk[:, 0] * np.sin(w_w + wk[:, 1])  # (t, k)
    ar_f = np.stack([_ar1(rng, phi, std, len(t)) for phi, std in sys.ar], axis=1)  # (t, k)
    n_ch = sys.loadings.shape[0]
    idio = np.stack([_ar1(rng, 0.9, sys.idio_std, len(t)) for _ in range(n_ch)], axis=1)
    norm = sys.struct_std  # (c,)
    return {
        "seasonal": seasonal_f @ sys.loadings.T / norm,
        "fast": _fast_factors(sys, t) @ sys.loadings.T / norm,
        "ar": (ar_f @ sys.loadings.T + idio) / norm,
        "noise": rng.normal(0.0, cfg.noise, (len(t), n_ch)),
    }


# --- anomalies ---------------------------------------------------------------------------------

_Injector = Callable[[np.ndarray, AnomalyEvent, dict[str, Any], np.random.Generator], None]


def _sign(rng: np.random.Generator) -> float:
    return float(rng.choice((-1.0, 1.0)))


def _spike(u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator) -> None:
    for ch in ev.channels:
        u[ev.start : ev.end, ch] += _sign(rng) * rng.uniform(6.0, 9.0)


def _level(u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator) -> None:
    for ch in ev.channels:
        u[ev.start : ev.end, ch] += _sign(rng) * rng.uniform(2.0, 3.5)


def _drift(u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator) -> None:
    for ch in ev.channels:
        ramp = np.linspace(0.0, _sign(rng) * rng.uniform(3.0, 5.0), ev.end - ev.start)
        u[ev.start : ev.end, ch] += ramp


def _frequency(
    u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator
) -> None:
    sys: _System = ctx["system"]
    t = ctx["t"][ev.start : ev.end]
    faster = _fast_factors(sys, t, speed=rng.uniform(2.5, 4.0)) @ sys.loadings.T / sys.struct_std
    ch = list(ev.channels)
    u[ev.start : ev.end, ch] += 1.5 * faster[:, ch] - ctx["fast"][ev.start : ev.end, ch]


def _corr_break(
    u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator
) -> None:
    # Flip the sign of the shared short-term dynamics: the marginal stays the same, the
    # co-movement with the other channels reverses.
    ch = list(ev.channels)
    shared = ctx["fast"][ev.start : ev.end, ch] + ctx["ar"][ev.start : ev.end, ch]
    u[ev.start : ev.end, ch] -= 2.0 * shared


def _flatline(
    u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator
) -> None:
    ch = list(ev.channels)
    u[ev.start : ev.end, ch] = u[ev.start, ch]


def _burst(u: np.ndarray, ev: AnomalyEvent, ctx: dict[str, Any], rng: np.random.Generator) -> None:
    ch = list(ev.channels)
    u[ev.start : ev.end, ch] += rng.normal(0.0, rng.uniform(1.0, 2.0), (ev.end - ev.start, len(ch)))


INJECTORS: dict[str, _Injector] = {
    "spike": _spike,
    "level_shift": _level,
    "drift": _drift,
    "frequency_change": _frequency,
    "correlation_break": _corr_break,
    "flatline": _flatline,
    "noise_burst": _burst,
}
assert set(INJECTORS) == set(ANOMALY_KINDS) == set(KIND_LENGTHS)


def _plan_lengths(
    kinds: Sequence[str], budget: int, rng: np.random.Generator
) -> list[tuple[str, int]]:
    """(kind, length) pairs, kinds round-robin in shuffled rounds, until ``budget`` steps."""
    plan: list[tuple[str, int]] = []
    covered = 0
    while covered < budget:
        for kind in rng.permutation(np.asarray(kinds)):
            lo, hi = KIND_LENGTHS[str(kind)]
            length = min(int(rng.integers(lo, hi + 1)), max(lo, budget - covered))
            plan.append((str(kind), length))
            covered += length
            if covered >= budget:
                break
    return plan


def _place(
    plan: list[tuple[str, int]], n_steps: int, rng: np.random.Generator
) -> list[tuple[str, int, int]]:
    """Non-overlapping (kind, start, end) in a shuffled order with random gaps between."""
    while plan and n_steps - sum(n for _, n in plan) < len(plan) + 1:
        plan = plan[:-1]
    if not plan:
        return []
    order = [plan[i] for i in rng.permutation(len(plan))]
    free = n_steps - sum(n for _, n in order)
    min_gap = min(100, free // (len(order) + 1))
    spare = free - min_gap * (len(order) + 1)
    gaps = min_gap + np.floor(rng.dirichlet(np.ones(len(order) + 1)) * spare).astype(int)
    placed, pos = [], 0
    for (kind, length), gap in zip(order, gaps[:-1], strict=True):
        pos += int(gap)
        placed.append((kind, pos, pos + length))
        pos += length
    return placed


def _inject(
    u: np.ndarray,
    ctx: dict[str, Any],
    kinds: Sequence[str],
    rate: float,
    rng: np.random.Generator,
) -> list[AnomalyEvent]:
    n_steps, n_ch = u.shape
    usable = [k for k in kinds if n_ch > 1 or k != "correlation_break"]
    budget = round(rate * n_steps)
    if budget == 0 or not usable:
        return []
    events = []
    for kind, start, end in _place(_plan_lengths(usable, budget, rng), n_steps, rng):
        width = int(rng.integers(1, min(3, n_ch) + 1))
        channels = tuple(sorted(int(c) for c in rng.choice(n_ch, width, replace=False)))
        event = AnomalyEvent(kind=kind, start=start, end=end, channels=channels)
        INJECTORS[kind](u, event, ctx, rng)
        events.append(event)
    return sorted(events, key=lambda e: e.start)


def generate(
    cfg: SyntheticConfig,
    *,
    n_steps: int,
    seed: int | None = None,
    anomalies: bool = True,
    start_step: int = 0,
    kinds: Sequence[str] | None = None,
    anomaly_rate: float | None = None,
) -> SyntheticSeries:
    """Generate ``n_steps`` steps starting at absolute step ``start_step`` (seasonal phase).

    ``seed`` (default ``cfg.seed``) drives the sample; the system always comes from
    ``cfg.seed``. ``kinds`` and ``anomaly_rate`` default to the config's. Event positions are
    relative to this batch (0 = its first step).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    kinds = list(cfg.kinds if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(ANOMALY_KINDS))
    if unknown:
        raise ValueError(f"unknown anomaly kinds {unknown}; known: {list(ANOMALY_KINDS)}")
    system = _system(cfg)
    rng = np.random.default_rng([cfg.seed if seed is None else seed, start_step, 104_729])
    t = np.arange(start_step, start_step + n_steps, dtype=np.float64)
    parts = _components(system, cfg, t, rng)
    u = parts["seasonal"] + parts["fast"] + parts["ar"] + parts["noise"]  # (t, c)
    rate = cfg.anomaly_rate if anomaly_rate is None else anomaly_rate
    ctx = {"system": system, "t": t, **parts}
    events = _inject(u, ctx, kinds, rate, rng) if anomalies else []
    labels = np.zeros(n_steps, dtype=np.int8)
    for ev in events:
        labels[ev.start : ev.end] = 1
    values = (system.offset + system.scale * u).astype(np.float32)
    return SyntheticSeries(values=values, labels=labels, events=events)


def synthetic_series_data(cfg: SyntheticConfig) -> SeriesData:
    """Train period without anomalies, then a test period (continuing in time) with them."""
    train = generate(cfg, n_steps=cfg.train_steps, anomalies=False)
    test = generate(cfg, n_steps=cfg.test_steps, start_step=cfg.train_steps)
    log.debug("synthetic test events: %s", [e.to_dict() for e in test.events])
    return make_series("synthetic", "synthetic", train.values, test.values, test.labels)


def to_frame(
    series: SyntheticSeries,
    *,
    entity: str,
    start: pd.Timestamp,
    cadence_s: int,
    columns: Sequence[Any] | None = None,
    timestamp_column: str = "timestamp",
    entity_column: str = "entity",
    label_column: str | None = "label",
) -> pd.DataFrame:
    """The series as a telemetry-contract frame: timestamp (UTC), entity, metrics, label.

    ``columns`` are names or objects with a ``.name`` (``ContractConfig.columns``); the default
    is ``m00``, ``m01``, ... . A naive ``start`` is taken to be UTC.
    """
    n_steps, n_ch = series.values.shape
    names = (
        [getattr(c, "name", c) for c in columns] if columns else [f"m{i:02d}" for i in range(n_ch)]
    )
    if len(names) != n_ch:
        raise ValueError(f"{len(names)} column names for {n_ch} channels")
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    frame = pd.DataFrame(
        {
            timestamp_column: pd.date_range(
                ts, periods=n_steps, freq=pd.Timedelta(seconds=cadence_s)
            ),
            entity_column: [entity] * n_steps,
        }
    )
    metrics = pd.DataFrame(series.values.astype(np.float64), columns=names)
    frame = pd.concat([frame, metrics], axis=1)
    if label_column is not None:
        frame[label_column] = series.labels.astype(np.int64)
    return frame
