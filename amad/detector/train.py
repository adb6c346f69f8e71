"""The training loop: ``fit`` trains an AMAD model on training-period windows and returns it.

``fit`` reads as a table of contents of named parts: ``select_device``, ``make_schedule`` (Adam's
learning rate multiplied by ``lr_decay`` after every epoch, halved by default),
``epoch_indices`` (a seeded permutation per epoch, capped at ``max_windows_per_epoch``),
``train_step`` (forward, objective, finiteness check, backward, clipping, step), ``eval_step``
(validation reconstruction loss), ``EarlyStopping`` (on that validation loss only, never
before ``train.min_steps`` optimiser steps; test data never reaches this module) and
``save_checkpoint``/``load_checkpoint`` (``amad.detector.checkpoint``). After training, the best model's score statistics
(per-channel error scale, discrepancy mean and std) are set from the same validation windows
with ``amad.detector.scoring.calibrate``.

Resume. With a ``checkpoint_dir``, a checkpoint (model, optimiser, scheduler, RNG states, epoch,
history, best state, early-stopping counter) is written atomically after every epoch. A later
``fit`` with the same configuration and data shapes continues from it; because each epoch's
window order depends only on ``(seed, epoch)`` and the RNG states are restored, a resumed run
ends with the same weights as an uninterrupted one on CPU.

A NaN or infinite loss raises ``NonFiniteLossError`` before the optimiser step; the checkpoint of
the last completed epoch is left as it was. Persistence of the final bundle is the caller's.

History. One record per epoch: losses, learning rate and validation loss, which a fixed seed on
CPU reproduces bit for bit, plus the epoch's wall-clock ``seconds`` and ``windows_per_s``
(``TIMING_KEYS``), which it does not. ``split_timings`` separates the two, so that whatever
is hashed (the bundle, DVC's lock) holds only the former.

Shape legend: n windows, b batch, t window steps, c channels.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from amad.config import ModelConfig, TrainConfig
from amad.detector.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    rng_states,
    run_fingerprint,
    save_checkpoint,
    set_rng_states,
)
from amad.detector.scoring import calibrate
from amad.errors import DataError, NonFiniteLossError, TrainingError
from amad.nn.losses import objective, reconstruction_loss
from amad.nn.model import AMAD
from amad.series.pooled import PooledWindows

log = logging.getLogger(__name__)

_VAL_STREAM = 2**31 - 1  # seed-sequence word for the validation subset (epochs use 0, 1, ...)

StepHook = Callable[[int, int], None]  # (epoch, global_step) after every optimiser step

# the wall-clock fields of a history record: they differ between two runs of the same training
TIMING_KEYS = ("seconds", "windows_per_s")


@dataclass
class TrainResult:
    """A trained model (best validation epoch's weights, eval mode) and how it got there."""

    model: torch.nn.Module
    history: list[dict[str, float]]
    best_epoch: int  # 0-based index into history
    device: str
    stopped_early: bool = False
    resumed_from_epoch: int | None = None  # epochs already done when this call started


def split_timings(
    history: list[dict[str, float]],
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """``history`` without ``TIMING_KEYS``, and the timings alone (with each epoch's number)."""
    content = [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]
    timings = [{"epoch": h["epoch"], **{k: h[k] for k in TIMING_KEYS if k in h}} for h in history]
    return content, timings


# ---------------------------------------------------------------- named parts


def select_device(preference: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device cuda was requested but no CUDA device is available")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def autocast_for(device: torch.device) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA, nothing on CPU (fp32 keeps CPU runs exactly reproducible)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """Learning rate ``lr * lr_decay ** epoch``, stepped once per epoch."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay)


def epoch_indices(n_windows: int, epoch: int, cfg: TrainConfig) -> np.ndarray:
    """The windows of one epoch, in order: a permutation seeded by (seed, epoch), capped."""
    order = np.random.default_rng([cfg.seed, epoch]).permutation(n_windows)
    return order[: cfg.max_windows_per_epoch] if cfg.max_windows_per_epoch else order


Windows = np.ndarray | PooledWindows  # (n, t, c): one entity's windows, or several pooled


def _batch(windows: Windows, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    chunk = np.ascontiguousarray(windows[idx], dtype=np.float32)  # (b, t, c)
    return torch.from_numpy(chunk).to(device, non_blocking=True)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """One optimiser step on ``batch (b, t, c)``; raises before stepping on a non-finite loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast_for(device):
        out = model(batch, latents=cfg.contrastive and cfg.contrastive_weight > 0)
    parts = objective(out, batch, cfg)
    total = float(parts.total.detach())
    if not np.isfinite(total):
        raise NonFiniteLossError(
            f"loss became {total} (rec={parts.rec}, dis={parts.dis}, "
            f"contrastive={parts.contrastive}); the last good checkpoint is kept"
        )
    parts.total.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return {
        "loss": total,
        "rec": float(parts.rec),
        "dis": float(parts.dis),
        "contrastive": float(parts.contrastive),
    }


@torch.inference_mode()
def eval_step(
    model: torch.nn.Module, windows: np.ndarray, batch_size: int, device: torch.device
) -> float:
    """Mean reconstruction loss over validation windows ``(n, t, c)``."""
    model.eval()
    total, count = 0.0, 0
    for lo in range(0, windows.shape[0], batch_size):
        batch = _batch(windows, np.arange(lo, min(lo + batch_size, windows.shape[0])), device)
        with autocast_for(device):
            out = model(batch, latents=False)
        total += float(reconstruction_loss(out, batch)) * batch.shape[0]
        count += batch.shape[0]
    return total / max(count, 1)


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss; keep the best state."""

    patience: int
    best_loss: float = float("inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def update(self, epoch: int, val_loss: float, model: torch.nn.Module) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


# ---------------------------------------------------------------- the loop


def _check_windows(train: Windows, val: Windows) -> None:
    if train.ndim != 3 or val.ndim != 3:
        raise DataError(f"windows must be (n, t, c); got {train.shape} and {val.shape}")
    if train.shape[0] == 0 or val.shape[0] == 0:
        raise DataError(f"no windows to train on (train {train.shape[0]}, val {val.shape[0]})")
    if train.shape[1:] != val.shape[1:]:
        raise DataError(f"train windows {train.shape[1:]} and val windows {val.shape[1:]} differ")


def _run_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    windows: Windows,
    epoch: int,
    cfg: TrainConfig,
    device: torch.device,
    *,
    progress: bool,
    on_step: StepHook | None,
    global_step: int,
) -> tuple[dict[str, float], int]:
    """Train one epoch; mean of each loss part, windows/s, and the updated global step."""
    order = epoch_indices(windows.shape[0], epoch, cfg)
    sums = {"loss": 0.0, "rec": 0.0, "dis": 0.0, "contrastive": 0.0}
    started = time.perf_counter()
    bar = tqdm(total=len(order), unit="win", desc=f"epoch {epoch + 1}/{cfg.epochs}",
               file=sys.stderr, disable=not progress, leave=False)  # fmt: skip
    with bar:
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            parts = train_step(model, optimizer, _batch(windows, idx, device), cfg, device)
            for key in sums:
                sums[key] += parts[key] * len(idx)
            global_step += 1
            bar.update(len(idx))
            bar.set_postfix(loss=f"{parts['loss']:.4g}")
            if on_step is not None:
                on_step(epoch, global_step)
    seconds = time.perf_counter() - started
    stats = {f"train_{k}": v / len(order) for k, v in sums.items()}
    stats["windows_per_s"] = len(order) / max(seconds, 1e-9)
    stats["seconds"] = seconds
    return stats, global_step


def val_subset(val: Windows, cfg: TrainConfig) -> np.ndarray:
    """A fixed (same every epoch) subset of validation windows, capped like an epoch (pooled
    windows are read into one array here: all of them when uncapped)."""
    cap = cfg.max_windows_per_epoch
    if not cap or val.shape[0] <= cap:
        return val if isinstance(val, np.ndarray) else val[:]
    idx = np.sort(
        np.random.default_rng([cfg.seed, _VAL_STREAM]).choice(val.shape[0], cap, replace=False)
    )
    return val[idx]


@dataclass
class _Run:
    """Everything a checkpoint restores: the mutable state of one training run."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    stopper: EarlyStopping
    history: list[dict[str, float]] = field(default_factory=list)
    epoch: int = 0  # epochs completed
    global_step: int = 0
    stopped: bool = False

    def state(self, fingerprint: str) -> dict[str, Any]:
        return {
            "fingerprint": fingerprint, "epoch": self.epoch, "global_step": self.global_step,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(), "rng": rng_states(),
            "history": self.history, "stopped": self.stopped,
            "early_stopping": vars(copy.copy(self.stopper)),
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.stopper = EarlyStopping(**state["early_stopping"])
        self.history, self.global_step = state["history"], state["global_step"]
        self.epoch, self.stopped = state["epoch"], state["stopped"]
        set_rng_states(state["rng"])


def _resume(run: _Run, ckpt: Path | None, fingerprint: str) -> int | None:
    """Restore ``run`` from ``ckpt`` when it exists; the number of epochs it had done."""
    if ckpt is None or not ckpt.is_file():
        return None
    state = load_checkpoint(ckpt)
    if state.get("fingerprint") != fingerprint:
        raise TrainingError(
            f"checkpoint {ckpt} was written for another configuration or data shape; "
            "remove it or choose another checkpoint directory"
        )
    run.restore(state)
    log.info("resuming from %s after epoch %d", ckpt, run.epoch)
    return run.epoch


def fit(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    train_windows: Windows,
    val_windows: Windows,
    *,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> TrainResult:
    """Train AMAD on windows ``(n, t, c)``; early-stop on the validation reconstruction loss."""
    _check_windows(train_windows, val_windows)
    device = select_device(train_cfg.device)
    torch.manual_seed(train_cfg.seed)
    model = AMAD(model_cfg, n_channels=train_windows.shape[-1]).to(device)
    step_model: torch.nn.Module = torch.compile(model) if train_cfg.compile else model  # type: ignore[assignment]
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    run = _Run(model, optimizer, make_schedule(optimizer, train_cfg),
               EarlyStopping(patience=train_cfg.patience))  # fmt: skip
    fingerprint = run_fingerprint(model_cfg, train_cfg, train_windows.shape, val_windows.shape)
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    resumed_from = _resume(run, ckpt, fingerprint)
    val_eval = val_subset(val_windows, train_cfg)
    while run.epoch < train_cfg.epochs and not run.stopped:
        lr = optimizer.param_groups[0]["lr"]
        stats, run.global_step = _run_epoch(
            step_model, optimizer, train_windows, run.epoch, train_cfg, device,
            progress=progress, on_step=on_step, global_step=run.global_step,
        )  # fmt: skip
        val_rec = eval_step(step_model, val_eval, train_cfg.batch_size, device)
        if not np.isfinite(val_rec):  # e.g. a non-finite gradient on the epoch's last step
            raise NonFiniteLossError(
                f"validation loss became {val_rec} after epoch {run.epoch + 1}; "
                "the last good checkpoint is kept"
            )
        run.history.append({"epoch": float(run.epoch), "lr": lr, **stats, "val_rec": val_rec})
        plateau = run.stopper.update(run.epoch, val_rec, model)
        run.stopped = plateau and run.global_step >= train_cfg.min_steps  # the step floor
        run.schedule.step()
        run.epoch += 1
        eta = (train_cfg.epochs - run.epoch) * stats["seconds"]  # at this epoch's pace
        log.info("epoch %d/%d: train loss %.4g, val rec %.4g, %.0f windows/s, %.1fs, ETA %.0fs",
                 run.epoch, train_cfg.epochs, stats["train_loss"], val_rec,
                 stats["windows_per_s"], stats["seconds"], eta)  # fmt: skip
        if ckpt is not None:
            save_checkpoint(ckpt, run.state(fingerprint))
    if run.stopped:
        log.info("stopped early after epoch %d (best %d)", run.epoch, run.stopper.best_epoch + 1)
    if run.stopper.best_state:
        model.load_state_dict(run.stopper.best_state)
    calibrate(model, val_eval, batch_size=train_cfg.batch_size)  # score statistics, validation only
    model.eval()
    return TrainResult(
        model=model,
        history=run.history,
        best_epoch=run.stopper.best_epoch,
        device=str(device),
        stopped_early=run.stopped,
        resumed_from_epoch=resumed_from,
    )
