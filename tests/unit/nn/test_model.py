"""The AMAD model: shapes for every variant and switch, input validation, determinism."""

from __future__ import annotations

import itertools

import pytest
import torch

from amad.config import ModelConfig
from amad.nn.model import AMAD, ModelOutput

MASKS = ["spectral", "multiscale_gaussian", "gaussian", "free"]


def tiny(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(
        d_model=16, n_heads=2, n_layers=2, d_ff=16, n_scales=3, max_len=32, proj_dim=8
    )
    base.update(kw)
    return ModelConfig.model_validate(base)


@pytest.mark.parametrize(
    ("mask", "mixup", "per_step", "latents"),
    list(itertools.product(MASKS, [True, False], [True, False], [True, False])),
)
def test_output_shapes(mask: str, mixup: bool, per_step: bool, latents: bool) -> None:
    model = AMAD(tiny(mask=mask, mixup=mixup, mixup_per_step=per_step), n_channels=3)
    out = model(torch.randn(4, 10, 3), latents=latents)
    assert isinstance(out, ModelOutput)
    assert out.recon.shape == (4, 10, 3)
    assert len(out.local) == len(out.global_) == 2
    for p, s in zip(out.local, out.global_, strict=True):
        assert p.shape == s.shape == (4, 2, 10, 10)
        assert torch.allclose(p.sum(-1), torch.ones(4, 2, 10), atol=1e-5)
        assert torch.allclose(s.sum(-1), torch.ones(4, 2, 10), atol=1e-5)
    expected = 2 if latents else 0
    assert len(out.z_local) == len(out.z_global) == expected
    for z in out.z_local + out.z_global:
        assert z.shape == (4, 10, 8)


@pytest.mark.parametrize(
    "shape", [(10, 3), (2, 10, 4), (2, 33, 3), (2, 0, 3), (0, 10, 3), (1, 2, 10, 3)]
)
def test_bad_input_shapes_raise_value_error(shape: tuple[int, ...]) -> None:
    model = AMAD(tiny(), n_channels=3)
    with pytest.raises(ValueError):
        model(torch.randn(*shape))


def test_zero_channels_rejected() -> None:
    with pytest.raises(ValueError):
        AMAD(tiny(), n_channels=0)


def _run(seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(seed)
    model = AMAD(tiny(dropout=0.1), n_channels=3)
    x = torch.randn(4, 10, 3)
    out = model(x)
    out.recon.square().mean().backward()
    return out.recon.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_deterministic_on_cpu_with_a_seed() -> None:
    r1, g1 = _run(7)
    r2, g2 = _run(7)
    r3, _ = _run(8)
    assert torch.equal(r1, r2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))
    assert not torch.equal(r1, r3)


def test_anomaly_transformer_mode_uses_only_the_global_branch_for_reconstruction() -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(mask="gaussian", mixup=False), n_channels=3)
    out = model(torch.randn(2, 10, 3), latents=False)
    out.recon.square().mean().backward()
    sigma = model.layers[0].attention.mask.sigma.weight  # type: ignore[union-attr]
    assert sigma.grad is None  # the prior does not feed the representation (like AT)
    assert model.layers[0].attention.qkv.weight.grad is not None


def test_mixup_lets_reconstruction_train_the_mask() -> None:
    torch.manual_seed(0)
    model = AMAD(tiny(mask="spectral", mixup=True), n_channels=3)
    model(torch.randn(2, 10, 3)).recon.square().mean().backward()
    mask = model.layers[0].attention.mask
    assert mask.log_scale.grad is not None  # type: ignore[union-attr]
    assert mask.log_scale.grad.abs().sum() > 0  # type: ignore[union-attr]


def test_state_dict_holds_no_constant_buffers() -> None:
    model = AMAD(tiny(mask="multiscale_gaussian"), n_channels=3)
    keys = model.state_dict().keys()
    assert not any(k.endswith(("positions", "frequency")) for k in keys)


# dynamo itself instantiates autograd.Function classes while tracing them (we only call .apply)
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_traces_into_one_graph_for_torch_compile() -> None:
    import torch._dynamo as dynamo

    dynamo.reset()
    model = AMAD(tiny(mask="spectral", mixup_per_step=True), n_channels=3)
    explained = dynamo.explain(model)(torch.randn(2, 10, 3))
    assert explained.graph_break_count == 0, explained.break_reasons
    dynamo.reset()


@pytest.mark.parametrize("mask", MASKS)
def test_bf16_autocast_keeps_associations_fp32(mask: str) -> None:
    from amad.config import TrainConfig
    from amad.nn.losses import objective

    torch.manual_seed(0)
    model = AMAD(tiny(mask=mask), n_channels=3)
    x = torch.randn(2, 10, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert all(p.dtype == torch.float32 for p in out.local + out.global_)
    parts = objective(out, x, TrainConfig())
    parts.total.backward()
    assert torch.isfinite(parts.total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
