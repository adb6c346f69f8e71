"""Training and inference throughput of AMAD against the two-pass minimax reference.

For each (channels, batch) configuration this measures, in one process and on the same model
weights and input:
  * AMAD train windows/s: forward + one-pass objective + backward + Adam step
    (bf16 autocast on CUDA, optional torch.compile);
  * reference train windows/s: forward + Anomaly Transformer's two losses and two backward
    passes (``maxmin_two_pass_reference``) + Adam step, in fp32;
  * AMAD inference windows/s: inference-mode forward without latents + per-step scores;
  * reference inference windows/s: full forward (with latents) + AT's per-layer KL loop scores;
and prints the ratios. Defaults: L=100, d=512, 8 heads, 3 layers, C in {38, 55}, batch in {32, 256}.

    python benchmarks/train_throughput.py --quick --channels 38 --batch 32
    python benchmarks/train_throughput.py --device cuda --channels 55 --batch 256 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from amad.config import ModelConfig, TrainConfig
from amad.nn.losses import (
    anomaly_transformer_kl,
    association_discrepancy,
    maxmin_two_pass_reference,
    objective,
)
from amad.nn.model import AMAD

SCORE_TEMPERATURE = 50.0


@dataclass
class Row:
    channels: int
    batch: int
    device: str
    train: float
    ref_train: float
    infer: float
    ref_infer: float
    peak_gib: float
    cpu_train_ratio: float  # the same ratios from process CPU time (robust on a shared box)
    cpu_infer_ratio: float

    @property
    def train_ratio(self) -> float:
        return self.train / self.ref_train if self.ref_train else float("nan")

    @property
    def infer_ratio(self) -> float:
        return self.infer / self.ref_infer if self.ref_infer else float("nan")


def tune_glibc_malloc() -> bool:
    """Keep freed memory in the heap (no mmap, no trim), so large CPU tensors are reused
    instead of page-faulted in afresh on every allocation. Linux/glibc only."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**62))


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on the device when enabled (CUDA by default; CPU with --cpu-bf16)."""
    if enabled:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds of one step."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(
    steps: dict[str, Callable[[], None]],
    device: torch.device,
    warmup: int,
    rounds: int,
    best: bool,
) -> dict[str, tuple[float, float]]:
    """Best (or median) (wall, CPU) seconds per step of each callable, in alternating rounds.

    Alternating AMAD and reference rounds spreads load changes on a shared machine over both,
    and the best round is the one least disturbed by neighbours (interference only adds time).
    Process CPU time is reported too.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(seconds_per_step(step, device))
    pick = min if best else statistics.median
    return {name: (pick(t[0] for t in ts), pick(t[1] for t in ts)) for name, ts in times.items()}


def amad_train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, cfg: TrainConfig, amp: bool
) -> Callable[[], None]:
    def step() -> None:
        with autocast(x.device, amp):
            out = model(x, latents=cfg.contrastive)
        objective(out, x, cfg).total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def reference_train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, cfg: TrainConfig
) -> Callable[[], None]:
    def step() -> None:
        maxmin_two_pass_reference(model(x, latents=cfg.contrastive), x, cfg)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def amad_infer_step(model: torch.nn.Module, x: torch.Tensor, amp: bool) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode(), autocast(x.device, amp):
            out = model(x, latents=False)
            err = (out.recon.float() - x).square().mean(-1)  # (b, t)
            dis = association_discrepancy(out.local, out.global_)  # (b, t)
            (torch.softmax(-SCORE_TEMPERATURE * dis, dim=-1) * err).cpu()

    return step


def reference_infer_step(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            out = model(x)
            err = (out.recon - x).square().mean(-1)
            dis = torch.zeros_like(err)
            for p, s in zip(out.local, out.global_, strict=True):
                dis = dis + anomaly_transformer_kl(s, p) + anomaly_transformer_kl(p, s)
            (torch.softmax(-SCORE_TEMPERATURE * dis, dim=-1) * err).cpu()

    return step


def amad_peak_gib(
    train: Callable[[], None], infer: Callable[[], None], device: torch.device
) -> float:
    """Peak CUDA memory of AMAD's own train and inference steps alone (0 on CPU)."""
    if device.type != "cuda":
        return 0.0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    for step in (train, train, infer):
        step()
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def measure(args: argparse.Namespace, channels: int, batch: int) -> Row:
    device = torch.device(args.device)
    torch.manual_seed(0)
    mcfg = ModelConfig(mask=args.mask, mixup=not args.no_mixup)
    tcfg = TrainConfig(contrastive=not args.no_contrastive)
    x = torch.randn(batch, args.length, channels, device=device)
    model = AMAD(mcfg, n_channels=channels).to(device)
    fast = torch.compile(model) if args.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    amp = (device.type == "cuda" and not args.fp32) or (device.type == "cpu" and args.cpu_bf16)
    train_steps = {"train": amad_train_step(fast, opt, x, tcfg, amp)}
    infer_steps = {"infer": amad_infer_step(fast, x, amp)}
    if not args.no_reference:
        train_steps["ref_train"] = reference_train_step(model, opt, x, tcfg)
        infer_steps["ref_infer"] = reference_infer_step(model, x)
    peak = amad_peak_gib(train_steps["train"], infer_steps["infer"], device)
    best = not args.median
    secs = interleaved(train_steps, device, args.warmup, args.steps, best)
    secs |= interleaved(infer_steps, device, args.warmup, args.steps, best)
    rate = {name: batch / wall for name, (wall, _) in secs.items()}
    cpu_rate = {name: batch / cpu for name, (_, cpu) in secs.items()}
    train, infer = rate["train"], rate["infer"]
    ref_train, ref_infer = rate.get("ref_train", 0.0), rate.get("ref_infer", 0.0)
    cpu_train_ratio = cpu_rate["train"] / cpu_rate["ref_train"] if ref_train else float("nan")
    cpu_infer_ratio = cpu_rate["infer"] / cpu_rate["ref_infer"] if ref_infer else float("nan")
    return Row(
        channels, batch, str(device), train, ref_train, infer, ref_infer, peak,
        cpu_train_ratio, cpu_infer_ratio,
    )  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[38, 55])
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--mask", default="spectral")
    ap.add_argument("--no-mixup", action="store_true")
    ap.add_argument("--no-contrastive", action="store_true")
    ap.add_argument("--no-reference", action="store_true", help="skip the two-pass reference")
    ap.add_argument("--compile", action="store_true", help="torch.compile the AMAD model")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    ap.add_argument(
        "--cpu-bf16", action="store_true", help="bf16 autocast for AMAD on CPU (AMX/AVX512-BF16)"
    )
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed rounds (best one reported)")
    ap.add_argument("--median", action="store_true", help="report the median round, not the best")
    ap.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed rounds")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--tune-malloc", action="store_true", help="glibc: no mmap/trim for large CPU tensors"
    )
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.warmup, args.steps = 1, 3
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = tune_glibc_malloc() if args.tune_malloc else False
    print(
        f"# AMAD mask={args.mask} mixup={not args.no_mixup} contrastive={not args.no_contrastive}"
        f" L={args.length} d=512 h=8 layers=3 device={args.device} threads={torch.get_num_threads()}"
        f" rounds={'median' if args.median else 'best'} compile={args.compile} cpu_bf16={args.cpu_bf16} malloc_tuned={tuned} warmup={args.warmup} steps={args.steps}"
    )
    header = (
        "C    batch  train/s  ref_train/s  ratio  infer/s  ref_infer/s  ratio  peak_GiB"
        "  cpu_ratio(train, infer)"
    )
    print(header)
    rows = []
    for channels in args.channels:
        for batch in args.batch:
            row = measure(args, channels, batch)
            rows.append(row)
            print(
                f"{channels:<4} {batch:<6} {row.train:8.1f} {row.ref_train:12.1f}"
                f" {row.train_ratio:6.2f} {row.infer:8.1f} {row.ref_infer:12.1f}"
                f" {row.infer_ratio:6.2f} {row.peak_gib:9.2f}"
                f"  {row.cpu_train_ratio:.2f}, {row.cpu_infer_ratio:.2f}",
                flush=True,
            )
    if args.json:
        payload = [
            asdict(r) | {"train_ratio": r.train_ratio, "infer_ratio": r.infer_ratio} for r in rows
        ]
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)


if __name__ == "__main__":
    main()
