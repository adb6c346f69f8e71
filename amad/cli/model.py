"""``amad train`` and ``amad score``: a config and a data source in, a bundle or scores out.

``amad train [--config params.yaml] [--set key=value ...] [--source smd --root DIR --entity E]
--out BUNDLE`` trains on the training period, fits the threshold on its validation split and writes
a verified bundle (see ``amad.detector.bundle``). ``amad score BUNDLE (--input FILE | --source ...
--entity E) --out scores.parquet|.csv`` writes one row per input step: ``step``, ``score``,
``flag``, both score kinds and, when known, ``label``. Outputs are written to a temp file and
renamed, so a failure never leaves a half-written file. Errors are ``AmadError`` subclasses,
turned into a message and an exit code by ``amad.cli.main``.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from amad.cli.options import config_option, resolve_config, set_option
from amad.config import AmadConfig, DataConfig
from amad.detector.bundle import load_bundle
from amad.errors import DataError

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "smd", "msl", "telemanom", "generic")
NON_FEATURE_COLUMNS = ("timestamp", "time", "entity", "label", "step")
OUTPUT_SUFFIXES = (".parquet", ".csv")


def _progress_default(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _data_overrides(source: str | None, root: str | None, entity: str | None) -> dict[str, Any]:
    pairs = {"data.source": source, "data.root": root, "data.entity": entity}
    return {k: v for k, v in pairs.items() if v is not None}


# ---------------------------------------------------------------- input files


def _by_name(features: pd.DataFrame, path: Path, channels: list[str]) -> pd.DataFrame:
    """The columns named ``channels``, in that order; a missing or extra column is an error."""
    names = [str(c) for c in features.columns]
    missing = [c for c in channels if c not in names]
    extra = [c for c in names if c not in channels]
    expected = ", ".join(channels[:10]) + (" ..." if len(channels) > 10 else "")
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing[:5])} (bundle: {expected})")
    if extra:
        raise DataError(f"{path}: unexpected column(s) {', '.join(extra[:5])} (bundle: {expected})")
    features.columns = pd.Index(names)
    return features[channels]


def _frame_values(
    frame: pd.DataFrame, path: Path, channels: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Feature matrix and optional labels from a table; non-feature columns are set aside.

    With ``channels`` (the bundle's recorded names) columns are matched by name; without them
    (a bundle trained on unnamed data) by position, which is logged.
    """
    labels = frame["label"].to_numpy() if "label" in frame.columns else None
    features = frame.drop(columns=[c for c in NON_FEATURE_COLUMNS if c in frame.columns])
    if channels is not None:
        features = _by_name(features, path, channels)
    else:
        log.warning("%s: the bundle records no channel names; columns matched by position", path)
    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DataError(f"{path}: non-numeric column(s) {', '.join(bad[:5])}")
    if features.shape[1] == 0:
        raise DataError(f"{path}: no numeric feature columns")
    return features.to_numpy(dtype=np.float64), labels


def read_input(
    path: Path, channels: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A (T, C) series (and labels, if a ``label`` column exists) from .npy, .csv or .parquet.

    Table columns are matched by name against ``channels`` when given (see ``_frame_values``).
    """
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv", ".parquet"):
        raise DataError(f"{path}: unsupported input type {suffix!r} (use .npy, .csv or .parquet)")
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            return (values[:, None] if values.ndim == 1 else values), None
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for a corrupt Parquet file
        raise DataError(f"cannot read {path}: {exc}") from exc
    if frame.empty:
        raise DataError(f"{path} has no rows")
    return _frame_values(frame, path, channels)


def write_table(frame: pd.DataFrame, out: Path) -> None:
    """Write ``frame`` as Parquet or CSV by suffix: temp file in the same folder, then rename."""
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{out}: use a .parquet or .csv file name", param_hint="--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads; on an oversubscribed machine fewer can be faster (see
    benchmarks/TUNING.md)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="CPU threads for torch (default: torch's choice, usually the core count).",
)  # fmt: skip


# ---------------------------------------------------------------- commands


@click.command("train")
@config_option
@set_option
@click.option("--source", type=click.Choice(SOURCES), default=None, help="data.source")
@click.option("--root", default=None, help="data.root (dataset folder)")
@click.option("--entity", default=None, help="data.entity (machine, channel, file stem)")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Bundle directory to create.")  # fmt: skip
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=None,
              help="Checkpoint every epoch here and resume from it after a crash.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle directory.")
@click.option("--evaluate/--no-evaluate", default=True,
              help="Also score the labelled test split into metrics.json (never used to fit).")  # fmt: skip
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a tty).")
@THREADS_OPTION
def train_command(
    config_path: str | None,
    sets: tuple[str, ...],
    source: str | None,
    root: str | None,
    entity: str | None,
    out: Path,
    checkpoint_dir: Path | None,
    overwrite: bool,
    evaluate: bool,
    progress: bool | None,
    threads: int | None,
) -> None:
    """Train a model on a data source and write a verified bundle to OUT."""
    from amad.detector.recipe import train_bundle

    _set_threads(threads)
    cfg = resolve_config(config_path, sets, _data_overrides(source, root, entity))
    outcome = train_bundle(
        cfg,
        out,
        checkpoint_dir=checkpoint_dir,
        progress=_progress_default(progress),
        overwrite=overwrite,
        evaluate=evaluate,
    )
    click.echo(
        f"bundle {outcome.path}: {outcome.epochs} epoch(s), best {outcome.best_epoch + 1}, "
        f"threshold {outcome.threshold:.6g} ({outcome.method}), "
        f"{outcome.seconds:.1f} s"
    )


def _load_source_split(
    bundle_cfg: AmadConfig, source: str, root: str | None, entity: str | None, split: str
) -> tuple[np.ndarray, np.ndarray | None]:
    from amad.series.loaders import load_series

    given = {k.removeprefix("data."): v for k, v in _data_overrides(source, root, entity).items()}
    data_cfg = DataConfig.model_validate({**bundle_cfg.data.model_dump(), **given})
    series = load_series(data_cfg)
    if split == "train":
        return series.train, None
    return series.test, series.labels


@click.command("score")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="A .npy, .csv or .parquet series (rows = steps).")  # fmt: skip
@click.option("--source", type=click.Choice(SOURCES), default=None)
@click.option("--root", default=None)
@click.option("--entity", default=None)
@click.option("--split", type=click.Choice(["test", "train"]), default="test",
              help="Which period of --source to score.")  # fmt: skip
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="scores.parquet or scores.csv")  # fmt: skip
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where to run the model (auto: CUDA when present).")  # fmt: skip
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a tty).")
@THREADS_OPTION
def score_command(
    bundle: Path,
    input_path: Path | None,
    source: str | None,
    root: str | None,
    entity: str | None,
    split: str,
    out: Path,
    device: str,
    progress: bool | None,
    threads: int | None,
) -> None:
    """Score a series with BUNDLE: per-step scores and alert flags."""
    from amad.detector.train import select_device

    _set_threads(threads)
    if (input_path is None) == (source is None):
        raise click.UsageError("give exactly one of --input FILE or --source ... --entity ...")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{out}: use a .parquet or .csv file name", param_hint="--out")
    loaded = load_bundle(bundle, device=select_device(device))
    if input_path is not None:
        values, labels = read_input(input_path, loaded.channels)
    else:
        assert source is not None
        values, labels = _load_source_split(loaded.config, source, root, entity, split)
    scored = loaded.score(values, progress=_progress_default(progress))
    frame = pd.DataFrame(
        {
            "step": np.arange(len(scored.scores)),
            "score": scored.scores,
            "flag": scored.flags,
            "reconstruction": scored.steps.reconstruction,
            "association": scored.steps.association,
        }
    )
    if labels is not None and len(labels) == len(frame):
        frame["label"] = np.asarray(labels).astype(np.int8)
    write_table(frame, out)
    click.echo(
        f"scored {len(frame)} steps: {int(scored.flags.sum())} flagged "
        f"({scored.flags.mean():.2%}) above {scored.threshold:.6g}; wrote {out}"
    )


def register(group: click.Group) -> None:
    """Add ``train`` and ``score`` to the ``amad`` group."""
    group.add_command(train_command)
    group.add_command(score_command)
