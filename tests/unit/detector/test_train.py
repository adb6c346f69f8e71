"""The training loop: determinism, resume after a crash, NaN handling, early stopping on val."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import amad.detector.train as train_mod
from amad.config import ModelConfig, TrainConfig
from amad.detector.checkpoint import CHECKPOINT, load_checkpoint
from amad.detector.train import epoch_indices, fit, val_subset
from amad.errors import DataError, NonFiniteLossError, TrainingError

MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16, dropout=0.1)
T, C = 16, 3


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "epochs": 3, "batch_size": 8, "lr": 1e-3, "patience": 5, "device": "cpu",
        "max_windows_per_epoch": 24, "contrastive": True, "maxmin": True, "seed": 7,
    }  # fmt: skip
    base.update(kw)
    return TrainConfig.model_validate(base)


def _windows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n + T)[:, None]
    series = np.sin(t / 5.0 + np.arange(C)) + 0.1 * rng.normal(size=(n + T, C))
    return np.lib.stride_tricks.sliding_window_view(series.astype(np.float32), T, axis=0).transpose(
        0, 2, 1
    )[:n]


TRAIN, VAL = _windows(40, 0), _windows(12, 1)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)


def test_training_is_deterministic_on_cpu() -> None:
    a = fit(MODEL, _cfg(), TRAIN, VAL, progress=False)
    b = fit(MODEL, _cfg(), TRAIN, VAL, progress=False)
    _assert_same_weights(a.model, b.model)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.device == "cpu" and len(a.history) == 3
    c = fit(MODEL, _cfg(seed=8), TRAIN, VAL, progress=False)
    assert not torch.equal(_weights(a.model)["head.weight"], _weights(c.model)["head.weight"])


def test_history_records_losses_and_a_halving_learning_rate() -> None:
    res = fit(MODEL, _cfg(), TRAIN, VAL, progress=False)
    assert [h["lr"] for h in res.history] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    for h in res.history:
        assert {"train_loss", "train_rec", "train_dis", "val_rec", "windows_per_s"} <= set(h)
        assert np.isfinite(h["val_rec"]) and h["windows_per_s"] > 0


def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    full = fit(MODEL, _cfg(), TRAIN, VAL, checkpoint_dir=tmp_path / "full", progress=False)

    class Crash(RuntimeError):
        pass

    def crash_in_epoch_2(epoch: int, step: int) -> None:
        if epoch == 1 and step == 5:  # 3 steps per epoch: mid-way through the 2nd epoch
            raise Crash

    with pytest.raises(Crash):
        fit(MODEL, _cfg(), TRAIN, VAL, checkpoint_dir=tmp_path / "crash",
            progress=False, on_step=crash_in_epoch_2)  # fmt: skip
    assert load_checkpoint(tmp_path / "crash" / CHECKPOINT)["epoch"] == 1
    resumed = fit(MODEL, _cfg(), TRAIN, VAL, checkpoint_dir=tmp_path / "crash", progress=False)
    assert resumed.resumed_from_epoch == 1 and full.resumed_from_epoch is None
    _assert_same_weights(full.model, resumed.model)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert resumed.best_epoch == full.best_epoch


def test_a_finished_checkpoint_returns_without_training(tmp_path: Path) -> None:
    first = fit(MODEL, _cfg(epochs=1), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False)
    steps: list[int] = []
    again = fit(MODEL, _cfg(epochs=1), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False,
                on_step=lambda e, s: steps.append(s))  # fmt: skip
    assert steps == [] and again.resumed_from_epoch == 1
    _assert_same_weights(first.model, again.model)


def test_resume_refuses_a_checkpoint_from_another_configuration(tmp_path: Path) -> None:
    fit(MODEL, _cfg(epochs=1), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(TrainingError, match="another configuration"):
        fit(MODEL, _cfg(epochs=1, lr=5e-3), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False)


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train_mod.objective
    calls = {"n": 0}
    digest: dict[str, str] = {}

    def poisoned(out, x, cfg):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        parts = real(out, x, cfg)
        if calls["n"] == 5:  # second step of epoch 2
            digest["before"] = hashlib.sha256((tmp_path / CHECKPOINT).read_bytes()).hexdigest()
            parts = dataclasses.replace(parts, total=parts.total * float("nan"))
        return parts

    monkeypatch.setattr(train_mod, "objective", poisoned)
    with pytest.raises(NonFiniteLossError, match="nan"):
        fit(MODEL, _cfg(), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False)
    after = hashlib.sha256((tmp_path / CHECKPOINT).read_bytes()).hexdigest()
    assert after == digest["before"]
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_nonfinite_validation_loss_is_not_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = iter([1.0, float("inf")])
    monkeypatch.setattr(train_mod, "eval_step", lambda *a, **k: next(values))
    with pytest.raises(NonFiniteLossError, match="validation loss became inf after epoch 2"):
        fit(MODEL, _cfg(), TRAIN, VAL, checkpoint_dir=tmp_path, progress=False)
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 1


def test_early_stopping_watches_only_the_validation_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[np.ndarray] = []
    losses = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    snapshots: list[dict[str, torch.Tensor]] = []

    def fake_eval(model, windows, batch_size, device):  # type: ignore[no-untyped-def]
        seen.append(windows)
        snapshots.append(_weights(model))
        return next(losses)

    monkeypatch.setattr(train_mod, "eval_step", fake_eval)
    res = fit(MODEL, _cfg(epochs=5, patience=2), TRAIN, VAL, progress=False)
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 0
    assert all(np.array_equal(w, VAL) for w in seen)  # the validation windows, nothing else
    for k, v in snapshots[0].items():  # the best (first) epoch's weights are returned
        if not k.startswith("score_"):  # score statistics are set after training (below)
            torch.testing.assert_close(_weights(res.model)[k], v, rtol=0, atol=0)


def test_fit_calibrates_the_score_statistics_on_validation_windows() -> None:
    res = fit(MODEL, _cfg(epochs=1), TRAIN, VAL, progress=False)
    with torch.no_grad():
        out = res.model(torch.from_numpy(np.ascontiguousarray(VAL)), latents=False)
    per_channel = (out.recon - torch.from_numpy(np.ascontiguousarray(VAL))).pow(2).mean(dim=(0, 1))
    torch.testing.assert_close(res.model.score_channel_scale, per_channel, rtol=1e-4, atol=1e-7)
    mean, std = res.model.score_dis_stats.tolist()
    assert mean > 0 and std > 0 and (mean, std) != (0.0, 1.0)


def test_epoch_order_is_seeded_per_epoch_and_capped() -> None:
    cfg = _cfg(max_windows_per_epoch=10)
    a, b = epoch_indices(100, 0, cfg), epoch_indices(100, 1, cfg)
    assert len(a) == 10 and len(set(a)) == 10 and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, epoch_indices(100, 0, cfg))
    assert sorted(epoch_indices(30, 0, _cfg(max_windows_per_epoch=None))) == list(range(30))


def test_validation_subset_is_capped_fixed_and_chronological() -> None:
    val = np.arange(50 * 2 * 1, dtype=np.float32).reshape(50, 2, 1)
    cfg = _cfg(max_windows_per_epoch=10)
    sub = val_subset(val, cfg)
    assert sub.shape == (10, 2, 1) and np.all(np.diff(sub[:, 0, 0]) > 0)
    np.testing.assert_array_equal(sub, val_subset(val, cfg))
    assert val_subset(val, _cfg(max_windows_per_epoch=None)) is val


def test_bad_windows_are_refused() -> None:
    with pytest.raises(DataError, match="no windows"):
        fit(MODEL, _cfg(), TRAIN[:0], VAL, progress=False)
    with pytest.raises(DataError, match="differ"):
        fit(MODEL, _cfg(), TRAIN, VAL[:, :8], progress=False)


def test_progress_bar_shows_loss_and_windows_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    fit(MODEL, _cfg(epochs=1), TRAIN, VAL, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "win/s" in err
    fit(MODEL, _cfg(epochs=1), TRAIN, VAL, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.gpu
def test_cuda_training_uses_bf16_autocast_and_can_compile(tmp_path: Path) -> None:
    res = fit(MODEL, _cfg(device="auto", compile=True), TRAIN, VAL,
              checkpoint_dir=tmp_path, progress=False)  # fmt: skip
    assert res.device.startswith("cuda")
    assert next(res.model.parameters()).dtype == torch.float32  # autocast, not a cast
    assert all(np.isfinite(h["train_loss"]) for h in res.history)
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert not any(k.startswith("_orig_mod.") for k in state["model"])  # the plain module
