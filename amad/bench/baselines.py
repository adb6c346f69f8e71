"""The baseline detectors of ``shared/BASELINES.md``, behind ``amad.bench.detectors``' interface.

Seeded ``random``, ``pca`` (95 % variance), ``iforest`` (100 trees), ``ae`` (an MLP on flattened
16-step windows), and ``SmoothedDetector``, which applies AMAD's score smoothing to any of them
as a control (``pca-smooth``, ``iforest-smooth``, ``ae-smooth``). Each is fitted on scaled
training data and returns one float64 score per step, higher meaning more anomalous.

Shape legend: T steps, C channels, n windows, w window length.
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

    def fit(self, train: np.ndarray, *, val: np.ndarray | None = None) -> None:
        self._pca.fit(check_matrix(train))

    def score(self, x: np.ndarray) -> np.ndarray:
        x = check_matrix(x)
        recon = self._pca.inverse_transform(self._pca.transform(x))
        return np.asarray(np.mean((x - recon) ** 2, axis=1), dtype=np.float64)


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
            errors[lo : lo + len(chunk)] = ((recon - chunk) ** 2).mean(dim=-1).numpy()
        return fold_window_scores(errors, starts, len(x))


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
}


#: The baselines with AMAD's default score smoothing (``ScoreConfig().smooth`` steps).
def _smoothed(make: Callable[[int], Detector]) -> Callable[[int], Detector]:
    return lambda seed: SmoothedDetector(make(seed), ScoreConfig().smooth)


SMOOTHED_BASELINES: dict[str, Callable[[int], Detector]] = {
    f"{name}-smooth": _smoothed(make) for name, make in BASELINES.items() if name != "random"
}
