"""``amad bench``: run detectors on every entity of a dataset and write honest results.

``amad bench --dataset smd --root DIR --entities all --detectors random,pca,iforest,ae,amad
--profile cpu --out runs/bench/smd`` writes ``results.json``, ``results.md``, per-step scores
(``scores/<detector>/<entity>.npy``) and plots; see ``amad.bench.runner`` for the protocol.
"""

from __future__ import annotations

from pathlib import Path

import click

from amad.bench.detectors import (
    AMAD_VARIANTS,
    BASELINES,
    SMOOTHED_BASELINES,
    known_detectors,
)
from amad.bench.runner import DATASETS, BenchSpec, run_bench
from amad.config import parse_override, profile_names

ALIASES = {
    "baselines": tuple(BASELINES),
    "smoothed": tuple(SMOOTHED_BASELINES),
    "ablations": tuple(AMAD_VARIANTS),
}


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _detectors(text: str) -> tuple[str, ...]:
    """Comma list with aliases expanded (``baselines``, ``ablations``), duplicates dropped."""
    names = [n for part in _csv(text) for n in ALIASES.get(part, (part,))]
    return tuple(dict.fromkeys(names))


@click.command("bench")
@click.option("--dataset", type=click.Choice(DATASETS), required=True, help="Data layout.")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset root (default: $AMAD_DATASETS/<SMD|MSL>).",
)
@click.option(
    "--entities",
    default="all",
    show_default=True,
    help="'all' or a comma list (synthetic: seed-0,seed-1,...).",
)
@click.option(
    "--detectors",
    default="random,pca,iforest,ae,amad",
    show_default=True,
    help=f"Comma list of: {', '.join(known_detectors())}. Any AMAD variant also as "
    "VARIANT@fleet: one model trained on every entity's windows (model.scope fleet), each "
    "entity with its own statistics and threshold.",
)
@click.option(
    "--profile",
    type=click.Choice(profile_names()),
    default="cpu",
    show_default=True,
    help="AMAD model size: cpu (small, fast) or gpu (paper size).",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed.")
@click.option(
    "--anomaly-ratio",
    type=float,
    default=None,
    help="r in percent for the threshold (default: SMD 0.5, MSL 1, others 1).",
)
@click.option(
    "--max-buffer", type=int, default=100, show_default=True, help="Largest VUS buffer length."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help=(
        "Config override: data.* for the data, anything else for AMAD variants (trained and "
        "thresholded by the pipeline's recipe; score.anomaly_ratio is --anomaly-ratio's)."
    ),
)
@click.option("--resume/--no-resume", default=False, help="Skip pairs already in results.json.")
@click.option("--progress/--no-progress", default=False, help="Training progress bars.")
def bench(
    dataset: str, root: str | None, entities: str, detectors: str, profile: str, out: str,
    seed: int, anomaly_ratio: float | None, max_buffer: int, sets: tuple[str, ...],
    resume: bool, progress: bool,
) -> None:  # fmt: skip
    """Benchmark detectors on a dataset with thresholds from training-period data only."""
    spec = BenchSpec(
        dataset=dataset,
        out=Path(out),
        detectors=_detectors(detectors),
        root=root,
        entities=None if entities.strip() == "all" else _csv(entities),
        profile=profile,
        seed=seed,
        anomaly_ratio=anomaly_ratio,
        max_buffer=max_buffer,
        overrides=dict(parse_override(s) for s in sets),
        resume=resume,
        progress=progress,
    )
    doc = run_bench(spec)
    click.echo(f"wrote {spec.out / 'results.json'} and {spec.out / 'results.md'}")
    for name, row in doc["means"].items():
        click.echo(
            f"{name:>28}: n={row['n_entities']:<3} AUC-ROC {row['auc_roc']:.3f}  "
            f"VUS-PR {row['vus_pr']:.3f}  aff-F1 {row['affiliation_f1']:.3f}"
        )


def register(group: click.Group) -> None:
    """Add ``amad bench`` to the CLI group."""
    group.add_command(bench)
