"""Training checkpoints: atomic writes, safe reads, RNG states and the resume fingerprint.

``amad.detector.train.fit`` writes a checkpoint (model, optimiser, scheduler, RNG states, epoch,
history, best state, early-stopping counter) after every epoch and resumes from one whose
``run_fingerprint`` matches: the model and training configs (minus ``_RESUMABLE_CHANGES``, which
may change between a crash and its resume) and the data shapes.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amad.config import ModelConfig, TrainConfig
from amad.errors import TrainingError
from amad.files import atomic_write_with

CHECKPOINT = "checkpoint.pt"
# fields that may change between a crash and its resume without invalidating the checkpoint
_RESUMABLE_CHANGES = ("epochs", "device", "compile", "patience")


def rng_states() -> dict[str, Any]:
    """Every RNG state a resumed run restores: torch (CPU and CUDA), Python and NumPy."""
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            **np_state,
            "state": {**np_state["state"], "key": np_state["state"]["key"].tolist()},
        },
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``rng_states`` captured."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = states["numpy"]
    key = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state({**np_state, "state": {**np_state["state"], "key": key}})


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same dir, then rename)."""
    atomic_write_with(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (tensors and plain data only)."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt file
        raise TrainingError(f"checkpoint {path} cannot be read: {exc}") from exc
    return state


def run_fingerprint(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    train_shape: tuple[int, ...],
    val_shape: tuple[int, ...],
) -> str:
    """What must match for a checkpoint to be resumed: configs (minus runtime) and data shapes."""
    train = train_cfg.model_dump(mode="json", exclude=set(_RESUMABLE_CHANGES))
    blob = json.dumps(
        [model_cfg.model_dump(mode="json"), train, list(train_shape), list(val_shape)],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
