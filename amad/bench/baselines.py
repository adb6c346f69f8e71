"""The baseline detectors of ``shared/BASELINES.md``, behind ``amad.bench.detectors``' interface.

Seeded ``random``, ``pca`` (95 % variance), ``iforest`` (100 trees), ``ae`` (an MLP on flattened
16-step windows), ``ar`` (channel-independent ridge autoregression, its 2026-12-01 section),
``kmeans`` (KMeansAD as in TSB-AD; ``kmeans-znorm`` with its per-window z-score), and ``SmoothedDetector``, which applies AMAD's score
smoothing to any of them as a control (``pca-smooth``, ``ar-smooth``, ...). Each is fitted on
scaled training data and returns one float64 score per step, higher meaning more anomalous.

Detectors whose score is a mean over channels (pca, ae, ar, kmeans) have a ``score_channels``
attribute: None scores every channel, an index array restricts the mean to those channels while
all channels stay inputs (``amad.bench.detectors.restrict_score`` sets it).

Shape legend: T steps, C channels, n windows, w window length, p AR order, S scored channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from amad.config import ScoreConfig
from amad.errors import DataError
from amad.series.windows import fold_window_scores, sliding_windows, smooth_steps, window_starts


class Detector(Protocol):
    """Fit on scaled training data, then score any scaled series step by step."""

    name: str

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None: ...

    def score(self, x: np.ndarray) -> np.ndarray: ...


class RandomDetector:
    """Uniform random scores from a seeded generator: the floor every metric is read against."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.params: dict[str, Any] = {"seed": seed}
        self._rng = np.random.default_rng(seed)

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        check_matrix(train)

    def score(self, x: np.ndarray) -> np.ndarray:
        return self._rng.random(len(check_matrix(x)))


class PCADetector:
    """Mean squared reconstruction error from the components explaining ``variance`` of the data."""

    name = "pca"

    def __init__(self, variance: float = 0.95) -> None:
        from sklearn.decomposition import PCA

        self.params: dict[str, Any] = {"variance": variance}
        self._pca = PCA(n_components=variance, svd_solver="full")
        self.score_channels: np.ndarray | None = None  # (S,) indices; None = all

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        self._pca.fit(check_matrix(train))

    def score(self, x: np.ndarray) -> np.ndarray:
        x = check_matrix(x)
        recon = self._pca.inverse_transform(self._pca.transform(x))
        return channel_mean((x - recon) ** 2, self.score_channels)


class IForestDetector:
    """scikit-learn IsolationForest; the score is the negated ``score_samples``."""

    name = "iforest"

    def __init__(self, n_trees: int = 100, seed: int = 0) -> None:
        from sklearn.ensemble import IsolationForest

        self.params: dict[str, Any] = {"n_trees": n_trees, "seed": seed}
        self._forest = IsolationForest(n_estimators=n_trees, random_state=seed)

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        self._forest.fit(check_matrix(train))

    def score(self, x: np.ndarray) -> np.ndarray:
        return -np.asarray(self._forest.score_samples(check_matrix(x)), dtype=np.float64)


class SmoothedDetector:
    """Another detector's scores after AMAD's score smoothing (``score.smooth``, a centred moving
    average): the control that shows how much of a gain is the smoothing and how much the model."""

    def __init__(self, inner: Detector, width: int) -> None:
        self.inner, self.width = inner, width
        self.name = f"{inner.name}-smooth"
        self.params: dict[str, Any] = {**getattr(inner, "params", {}), "smooth": width}

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        self.inner.fit(train, val=val)

    def score(self, x: np.ndarray) -> np.ndarray:
        return smooth_steps(self.inner.score(x), self.width)


class WindowAEDetector:
    """MLP autoencoder on flattened stride-1 windows (w*C -> 128 -> 32 -> 128 -> w*C, ReLU).

    Adam 1e-3, batch 256, ``steps`` updates; a step's score is its squared error (mean over
    channels) averaged over every window that covers it.
    """

    name = "ae"

    def __init__(self, *, window: int = 16, steps: int = 500, batch: int = 256, seed: int = 0):
        self.window, self.steps, self.batch, self.seed = window, steps, batch, seed
        self.params: dict[str, Any] = {
            "window": window, "steps": steps, "batch": batch, "seed": seed, "lr": 1e-3,
            "layers": "w*C-128-32-128-w*C ReLU",
        }  # fmt: skip
        self._net: torch.nn.Module | None = None
        self.score_channels: np.ndarray | None = None  # (S,) indices; None = all

    def _build(self, width: int) -> torch.nn.Module:
        torch.manual_seed(self.seed)
        return torch.nn.Sequential(
            torch.nn.Linear(width, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 32), torch.nn.ReLU(),
            torch.nn.Linear(32, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, width),
        )  # fmt: skip

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        windows = sliding_windows(check_matrix(train, self.window), self.window, 1)  # (n, w, C)
        flat = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).flatten(1)
        net = self._build(flat.shape[1])
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(self.seed)
        net.train()
        for _ in range(self.steps):
            idx = torch.randint(0, flat.shape[0], (min(self.batch, flat.shape[0]),), generator=gen)
            batch = flat[idx]  # (b, w*C)
            loss = torch.mean((net(batch) - batch) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self._net = net.eval()

    @torch.no_grad()
    def score(self, x: np.ndarray) -> np.ndarray:
        if self._net is None:
            raise RuntimeError("fit() before score()")
        x = check_matrix(x, self.window)
        starts = window_starts(len(x), self.window, 1)
        windows = sliding_windows(x, self.window, 1)  # (n, w, C)
        errors = np.empty((len(windows), self.window), dtype=np.float64)
        for lo in range(0, len(windows), 4096):
            chunk = torch.from_numpy(np.ascontiguousarray(windows[lo : lo + 4096], np.float32))
            recon = self._net(chunk.flatten(1)).view_as(chunk)  # (b, w, C)
            errors[lo : lo + len(chunk)] = channel_mean(
                ((recon - chunk) ** 2).numpy(), self.score_channels
            )
        return fold_window_scores(errors, starts, len(x))


class ARDetector:
    """Channel-independent ridge autoregression: each channel from its own ``order`` last values.

    Per channel c, ``x[t, c] ~ b_c + sum_k a_ck x[t-k, c]`` (ridge ``lam``, the intercept not
    penalised), fitted on the standardised fitting part. A step's score is its squared one-step
    error divided by the channel's error scale (mean squared error on ``val``, the held-out part
    of the training period; floored at ``floor`` x the scored channels' mean scale), averaged
    over the scored channels. The first ``order`` steps of a series see its first value repeated
    as their history.
    """

    name = "ar"

    def __init__(self, *, order: int = 16, lam: float = 10.0, floor: float = 0.5) -> None:
        if order < 1 or lam < 0 or not 0 <= floor <= 1:
            raise ValueError(
                f"need order >= 1, lam >= 0, 0 <= floor <= 1; got {order}, {lam}, {floor}"
            )
        self.order, self.lam, self.floor = order, lam, floor
        self.params: dict[str, Any] = {"order": order, "lam": lam, "floor": floor}
        self.score_channels: np.ndarray | None = None  # (S,) indices; None = all
        self.coef: np.ndarray | None = None  # (C, p), coef[:, k] multiplies x[t-1-k]
        self.bias: np.ndarray | None = None  # (C,)
        self.scale: np.ndarray | None = None  # (C,) mean squared one-step error, held out

    def _lags(self, x: np.ndarray) -> np.ndarray:
        """(T, C) -> (T, C, p) history of every step, newest first (front padded by x[0])."""
        p = self.order
        padded = np.concatenate([np.repeat(x[:1], p, axis=0), x]).astype(np.float64)  # (T+p, C)
        view = np.lib.stride_tricks.sliding_window_view(padded[:-1], p, axis=0)  # (T, C, p)
        return view[..., ::-1]

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        train = check_matrix(train, self.order + 2)
        lags = self._lags(train)[self.order :]  # (n, C, p) real histories only
        y = train[self.order :].astype(np.float64)  # (n, C)
        lag_mean, y_mean = lags.mean(axis=0), y.mean(axis=0)  # (C, p), (C,)
        centred = lags - lag_mean
        gram = np.einsum("ncp,ncq->cpq", centred, centred)  # (C, p, p)
        gram += self.lam * np.eye(self.order)
        rhs = np.einsum("ncp,nc->cp", centred, y - y_mean)  # (C, p)
        self.coef = np.linalg.solve(gram, rhs[..., None])[..., 0]  # (C, p)
        self.bias = y_mean - np.einsum("cp,cp->c", lag_mean, self.coef)
        held = train if val is None else check_matrix(val)  # None: in-sample (documented)
        err = self.errors(held)
        self.scale = err[self.order :].mean(axis=0) if len(err) > 2 * self.order else err.mean(0)

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Squared one-step errors (T, C) of a scaled series."""
        if self.coef is None or self.bias is None:
            raise RuntimeError("fit() before score()")
        x = check_matrix(x)
        pred = np.einsum("tcp,cp->tc", self._lags(x), self.coef) + self.bias  # (T, C)
        return np.asarray((x - pred) ** 2, dtype=np.float64)

    def score(self, x: np.ndarray) -> np.ndarray:
        err = self.errors(x)
        if self.scale is None:
            raise RuntimeError("fit() before score()")
        cols = np.arange(err.shape[1]) if self.score_channels is None else self.score_channels
        scale = self.scale[cols]  # (S,)
        scale = np.maximum(scale, self.floor * scale.mean()) + 1e-12
        return np.asarray((err[:, cols] / scale).mean(axis=1), dtype=np.float64)


class KMeansDetector:
    """KMeansAD as in TSB-AD: k-means on flattened stride-1 windows of ``window`` steps.

    The ``k`` centroids are fitted on the fitting part, a window's score is its Euclidean
    distance to the nearest centroid (over the scored channels' coordinates), and a step's score
    is the mean over the windows that cover it. ``normalize`` z-scores each flattened window
    (w*C values) on its own, as TSB-AD's class does by default (``kmeans-znorm``); it is off in
    ``kmeans`` because the bench already standardises every channel with fitting-part statistics
    and a window-wide z-score mixes channels of different meaning and drops level shifts
    (the comparison: benchmarks/RESULTS.md).
    """

    def __init__(
        self, *, window: int = 40, k: int = 10, normalize: bool = False, seed: int = 0
    ) -> None:
        from sklearn.cluster import KMeans

        self.name = "kmeans-znorm" if normalize else "kmeans"
        self.window, self.normalize = window, normalize
        self.params: dict[str, Any] = {
            "window": window,
            "k": k,
            "normalize": normalize,
            "seed": seed,
        }
        self.score_channels: np.ndarray | None = None  # (S,) indices; None = all
        self._kmeans = KMeans(n_clusters=k, random_state=seed)
        self._fitted = False

    def _flat(self, x: np.ndarray) -> np.ndarray:
        """(T, C) -> (n, w*C) windows, each z-scored over its values when ``normalize``."""
        windows = sliding_windows(check_matrix(x, self.window), self.window, 1)  # (n, w, C)
        flat = np.ascontiguousarray(windows, dtype=np.float32).reshape(len(windows), -1)
        if self.normalize:
            std = flat.std(axis=1, ddof=1, keepdims=True)
            flat = (flat - flat.mean(axis=1, keepdims=True)) / np.where(std > 1e-8, std, 1.0)
        return flat

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        self._kmeans.fit(self._flat(train))
        self._fitted = True

    def window_distances(self, x: np.ndarray) -> np.ndarray:
        """Distance of every stride-1 window of ``x`` to its nearest centroid: (n,)."""
        if not self._fitted:
            raise RuntimeError("fit() before score()")
        flat = self._flat(x)  # (n, w*C)
        nearest = self._kmeans.predict(flat)  # (n,), nearest over all coordinates
        centres = np.asarray(self._kmeans.cluster_centers_, dtype=np.float32)
        out = np.empty(len(flat), dtype=np.float64)
        for lo in range(0, len(flat), 4096):
            diff = flat[lo : lo + 4096] - centres[nearest[lo : lo + 4096]]  # (b, w*C)
            sq = diff.reshape(len(diff), self.window, -1) ** 2  # (b, w, C)
            if self.score_channels is not None:
                sq = sq[..., self.score_channels]  # (b, w, S)
            out[lo : lo + len(diff)] = np.sqrt(sq.sum(axis=(1, 2), dtype=np.float64))
        return out

    def score(self, x: np.ndarray) -> np.ndarray:
        dist = self.window_distances(x)  # (n,)
        starts = window_starts(len(x), self.window, 1)
        return fold_window_scores(np.repeat(dist[:, None], self.window, axis=1), starts, len(x))


def channel_mean(values: np.ndarray, channels: np.ndarray | None) -> np.ndarray:
    """Mean over the last (channel) axis, over ``channels`` only when given: (..., C) -> (...)."""
    picked = values if channels is None else values[..., channels]
    return np.asarray(picked.mean(axis=-1), dtype=np.float64)


def check_matrix(x: np.ndarray, min_steps: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise DataError(f"expected a (steps, channels) array, got shape {arr.shape}")
    if len(arr) < min_steps:
        raise DataError(f"{len(arr)} steps are fewer than the {min_steps} this detector needs")
    if not np.isfinite(arr).all():
        raise DataError("input holds NaN or infinite values")
    return arr


BASELINES: dict[str, Callable[[int], Detector]] = {
    "random": lambda seed: RandomDetector(seed),
    "pca": lambda seed: PCADetector(),
    "iforest": lambda seed: IForestDetector(seed=seed),
    "ae": lambda seed: WindowAEDetector(seed=seed),
    "ar": lambda seed: ARDetector(),
    "kmeans": lambda seed: KMeansDetector(seed=seed),
    "kmeans-znorm": lambda seed: KMeansDetector(normalize=True, seed=seed),
}


#: The baselines with AMAD's default score smoothing (``ScoreConfig().smooth`` steps).
def _smoothed(make: Callable[[int], Detector]) -> Callable[[int], Detector]:
    return lambda seed: SmoothedDetector(make(seed), ScoreConfig().smooth)


SMOOTHED_BASELINES: dict[str, Callable[[int], Detector]] = {
    f"{name}-smooth": _smoothed(make) for name, make in BASELINES.items() if name != "random"
}
