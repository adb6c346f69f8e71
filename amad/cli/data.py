"""``amad synth``, ``amad validate``, ``amad ingest`` and ``amad stage``: telemetry in, versions out.

- ``amad synth --out DIR --batches N --rows R --entities e1,e2 [--anomalies] [--bad KIND]
  --seed S`` writes contract-shaped batches (``batch-000.csv`` ...), consecutive in time; with
  ``--bad`` the last batch is broken in the named way (see ``amad.telemetry.corruptions``).
- ``amad validate FILE...`` runs the pre-parse checks and the GX suite, writes each report, and
  exits 3 when any batch is rejected.
- ``amad ingest SOURCE...`` (files, folders, ``s3://`` prefixes) appends accepted batches to
  the dataset, quarantines rejected ones, then ``dvc add``s (and pushes) the dataset when it
  changed and lives in a DVC repository. Exit 3 when any batch was quarantined.
- ``amad stage validate|windows|train|evaluate`` runs one ``dvc.yaml`` stage.
- ``amad reference refresh [--last-rows N]`` recomputes the drift reference statistics from the
  accepted data (each entity's last N rows, or all), replaces ``reference.json`` atomically under
  the dataset lock, prints old and new per metric and records the new data version (``dvc add``,
  push), as any dataset change.
- ``amad data compact [--max-parts-per-day N]`` merges every entity-day holding more than N parts
  into one (``amad.telemetry.compaction``) under the dataset lock, then records the data version.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import pandas as pd

from amad.cli.options import config_option, resolve_config, set_option
from amad.config import AmadConfig
from amad.errors import DataValidationError

log = logging.getLogger(__name__)
# GX logs its own import-time bookkeeping at INFO; the CLI keeps its warnings only.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

PIPELINE = Path("runs/pipeline")
STAGE_PATHS = {
    "validate": PIPELINE / "validate",
    "windows": PIPELINE / "windows",
    "train": PIPELINE / "bundle",
    "evaluate": PIPELINE / "evaluate",
}
# git-tracked (dvc metrics show / diff, dvc plots show); content only, no timings
METRICS = Path("metrics")
PROVENANCE = PIPELINE / "provenance.json"  # when, which commit, how long: not a DVC output


def _config(path: str | None, sets: tuple[str, ...]) -> AmadConfig:
    return resolve_config(path, sets)


# --------------------------------------------------------------------------- synth


def synth_frames(
    cfg: AmadConfig, *, batches: int, rows: int, entities: list[str], anomalies: bool,
    seed: int, start: pd.Timestamp,
) -> list[pd.DataFrame]:  # fmt: skip
    """``batches`` consecutive contract frames, ``rows`` steps per entity each."""
    from amad.series.synthetic import generate, to_frame

    c = cfg.contract
    syn = cfg.data.synthetic.model_copy(update={"n_channels": len(c.columns)})
    frames = []
    for b in range(batches):
        parts = []
        for k, entity in enumerate(entities):
            series = generate(syn, n_steps=rows, seed=seed * 1000 + k, anomalies=anomalies,
                              start_step=b * rows)  # fmt: skip
            parts.append(to_frame(
                series, entity=entity, start=start + pd.Timedelta(seconds=b * rows * c.cadence_s),
                cadence_s=c.cadence_s, columns=c.columns, timestamp_column=c.timestamp_column,
                entity_column=c.entity_column, label_column=c.label_column,
            ))  # fmt: skip
        frames.append(pd.concat(parts, ignore_index=True))
    return frames


def write_batches(
    frames: list[pd.DataFrame], out: Path, cfg: AmadConfig, *, fmt: str, bad: str | None
) -> list[Path]:
    """Write the frames as batch files; with ``bad`` the last one is broken that way."""
    from amad.telemetry.corruptions import make_bad, to_csv_bytes, to_parquet_bytes
    from amad.telemetry.schema import Contract

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        if bad and i == len(frames) - 1:
            prev = frames[i - 1] if i else None
            data, suffix = make_bad(bad, frame, Contract(cfg.contract), prev)
            path = out / f"batch-{i:03d}-bad-{bad}{suffix}"
        else:
            data = to_csv_bytes(frame) if fmt == "csv" else to_parquet_bytes(frame)
            path = out / f"batch-{i:03d}.{fmt}"
        path.write_bytes(data)
        paths.append(path)
    return paths


@click.command("synth")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--batches", type=click.IntRange(1), default=3, show_default=True)
@click.option("--rows", type=click.IntRange(2), default=1440, show_default=True,
              help="Steps per entity per batch.")  # fmt: skip
@click.option("--entities", default="e1", show_default=True, help="Comma-separated entity ids.")
@click.option("--anomalies/--no-anomalies", default=False, help="Inject labelled anomalies.")
@click.option(
    "--bad", default=None, help="Break the last batch this way (see amad.telemetry.corruptions)."
)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv")
@click.option("--start", default="2024-01-01T00:00:00Z", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@config_option
@set_option
def synth_cmd(out: str, batches: int, rows: int, entities: str, anomalies: bool, bad: str | None,
              fmt: str, start: str, seed: int, config_path: str | None, sets: tuple[str, ...]) -> None:  # fmt: skip
    """Write synthetic telemetry batches in the contract's format."""
    from amad.telemetry.corruptions import BAD_KINDS

    if bad is not None and bad not in BAD_KINDS:
        raise click.BadParameter(f"choose one of {', '.join(BAD_KINDS)}", param_hint="--bad")
    cfg = _config(config_path, sets)
    names = [e.strip() for e in entities.split(",") if e.strip()]
    frames = synth_frames(cfg, batches=batches, rows=rows, entities=names, anomalies=anomalies,
                          seed=seed, start=pd.Timestamp(start))  # fmt: skip
    for path in write_batches(frames, Path(out), cfg, fmt=fmt, bad=bad):
        click.echo(str(path))


# --------------------------------------------------------------------------- validate / ingest


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--report-dir", type=click.Path(file_okay=False), default=None,
              help="Where reports go (default: contract.reports_dir/<sha256>).")  # fmt: skip
@config_option
@set_option
def validate_cmd(files: tuple[str, ...], report_dir: str | None, config_path: str | None,
                 sets: tuple[str, ...]) -> None:  # fmt: skip
    """Validate batch files against the contract without ingesting them."""
    from amad.files import sha256_bytes
    from amad.telemetry.expectations import validate_bytes
    from amad.telemetry.reference import read_reference
    from amad.telemetry.schema import Contract

    cfg = _config(config_path, sets)
    contract = Contract(cfg.contract)
    reference = read_reference(cfg.contract.data_dir)
    rejected = []
    for name in files:
        data = Path(name).read_bytes()
        report, _ = validate_bytes(data, contract, name=name, reference=reference)
        base = str(report_dir or cfg.contract.reports_dir).rstrip("/")  # a folder or s3://
        where = report.save(f"{base}/{sha256_bytes(data)}")
        click.echo(f"{report.summary()} [report: {where}]")
        if not report.success:
            rejected.append(name)
    if rejected:
        raise DataValidationError(f"{len(rejected)} of {len(files)} batches rejected")


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True)
@click.option("--dvc/--no-dvc", "use_dvc", default=True, show_default=True,
              help="dvc add the dataset when it changed (inside a DVC repository).")  # fmt: skip
@click.option("--push/--no-push", default=True, show_default=True, help="dvc push afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
@config_option
@set_option
def ingest_cmd(sources: tuple[str, ...], use_dvc: bool, push: bool, as_json: bool,
               config_path: str | None, sets: tuple[str, ...]) -> None:  # fmt: skip
    """Validate batches and append the accepted ones to the versioned dataset."""
    from amad.telemetry.ingest import data_version, ingest, record_version
    from amad.telemetry.lock import dataset_lock

    cfg = _config(config_path, sets)
    c = cfg.contract
    Path(c.data_dir).mkdir(parents=True, exist_ok=True)
    with dataset_lock(c.data_dir):  # batches and their data version, as one critical section
        report = ingest(sources, c, c.data_dir, c.quarantine_dir, reports_dir=c.reports_dir)
        # not only when this run changed the data: a retry finishes an earlier run's add/push
        settle = use_dvc and (report.changed or data_version(cfg) is not None)
        version = record_version(cfg, push=push) if settle else data_version(cfg)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "data_version": version}, indent=2))
    else:
        for o in report.outcomes:
            click.echo(f"{o.status:11s} {o.message}")
        click.echo(f"data version: {version}")
    if report.rejected:
        raise DataValidationError(f"{len(report.rejected)} batch(es) quarantined")


@click.group("reference")
def reference_group() -> None:
    """The drift reference statistics (reference.json in the dataset)."""


@reference_group.command("refresh")
@click.option("--last-rows", type=click.IntRange(min=2), help="Each entity's last N accepted rows "
              "(default: all).")  # fmt: skip
@click.option("--dvc/--no-dvc", "use_dvc", default=True, show_default=True,
              help="dvc add the dataset afterwards (inside a DVC repository).")  # fmt: skip
@click.option("--push/--no-push", default=True, show_default=True, help="dvc push afterwards.")
@config_option
@set_option
def reference_refresh_cmd(last_rows: int | None, use_dvc: bool, push: bool,
                          config_path: str | None, sets: tuple[str, ...]) -> None:  # fmt: skip
    """Recompute the reference statistics from the accepted data; a new data version."""
    from amad.telemetry.ingest import data_version, record_version
    from amad.telemetry.lock import dataset_lock
    from amad.telemetry.reference import refresh_reference
    from amad.telemetry.schema import Contract

    cfg = _config(config_path, sets)
    c = cfg.contract
    with dataset_lock(c.data_dir):  # no ingest between the rows read and the version recorded
        before = data_version(cfg)
        old, new = refresh_reference(c.data_dir, Contract(c), last_rows=last_rows)
        version = record_version(cfg, push=push) if use_dvc else data_version(cfg)
    was = (old or {}).get("columns", {})
    click.echo(f"reference: {(old or {}).get('source', 'none')} ({(old or {}).get('rows', 0)} rows)"
               f" -> {new['source']} ({new['rows']} rows)")  # fmt: skip
    for name, stats in new["columns"].items():
        prev = was.get(name)
        then = f"{prev['mean']:.6g} / {prev['std']:.6g}" if prev else "-"
        click.echo(f"  {name:<16} mean / std {then} -> {stats['mean']:.6g} / {stats['std']:.6g}")
    click.echo(f"data version: {before} -> {version}")


@click.group("data")
def data_group() -> None:
    """Maintenance of the versioned dataset."""


@data_group.command("compact")
@click.option("--max-parts-per-day", type=click.IntRange(min=1), default=1, show_default=True,
              help="Compact every entity-day holding more parts than this into one.")  # fmt: skip
@click.option("--dvc/--no-dvc", "use_dvc", default=True, show_default=True,
              help="dvc add the dataset afterwards (inside a DVC repository).")  # fmt: skip
@click.option("--push/--no-push", default=True, show_default=True, help="dvc push afterwards.")
@config_option
@set_option
def compact_cmd(max_parts_per_day: int, use_dvc: bool, push: bool, config_path: str | None,
                sets: tuple[str, ...]) -> None:  # fmt: skip
    """Merge each entity-day's parts into one (same rows, same entity fingerprints)."""
    from amad.telemetry.compaction import compact, day_parts
    from amad.telemetry.ingest import data_version, record_version
    from amad.telemetry.lock import dataset_lock
    from amad.telemetry.schema import Contract

    cfg = _config(config_path, sets)
    c = cfg.contract
    with dataset_lock(c.data_dir):  # the compaction and its data version, one critical section
        before = sum(len(r) for r in day_parts(c.data_dir).values())
        done = compact(c.data_dir, Contract(c), max_parts_per_day=max_parts_per_day)
        after = sum(len(r) for r in day_parts(c.data_dir).values())
        settle = use_dvc and data_version(cfg) is not None  # also settles an earlier run's add
        version = record_version(cfg, push=push) if settle else data_version(cfg)
    click.echo(f"compacted {len(done)} entity-day(s): {before} parts -> {after}")
    click.echo(f"data version: {version}")


# --------------------------------------------------------------------------- stages


def run_stage(name: str, cfg: AmadConfig) -> dict[str, Any]:
    """Run one ``dvc.yaml`` stage with the fixed paths in ``STAGE_PATHS``."""
    from amad import stages
    from amad.evaluation.stage_files import write_metrics

    paths = STAGE_PATHS
    if name == "validate":
        return dict(stages.validate(cfg, out_dir=paths["validate"]))
    if name == "windows":
        return {"windows": str(stages.windows(cfg, out_dir=paths["windows"]))}
    if name == "train":
        outcome = stages.train(cfg, paths["windows"], paths["train"], provenance_file=PROVENANCE)
        write_metrics(METRICS / "train.json", stages.train_summary(outcome))
        return {"bundle": str(outcome.path), **outcome.metrics, "provenance": str(PROVENANCE)}
    evaluation = stages.evaluate(cfg, paths["train"], paths["windows"], out_dir=paths["evaluate"],
                                 plot_file=METRICS / "evaluate_scores.csv")  # fmt: skip
    metrics = evaluation.with_baseline(stages.evaluate_baseline(cfg, paths["windows"])).to_dict()
    write_metrics(METRICS / "evaluate.json", metrics)
    return metrics


@click.command("stage")
@click.argument("name", type=click.Choice(list(STAGE_PATHS)))
@config_option
@set_option
def stage_cmd(name: str, config_path: str | None, sets: tuple[str, ...]) -> None:
    """Run one pipeline stage (what dvc.yaml calls)."""
    result = run_stage(name, _config(config_path, sets))
    click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


def register(group: click.Group) -> None:
    for command in (synth_cmd, validate_cmd, ingest_cmd, stage_cmd, reference_group, data_group):
        group.add_command(command)
