"""``amad registry list|show|publish|promote|rollback|fetch|recalibrate``: the model registry by hand.

The store is ``--store URI`` (``s3://bucket/prefix`` or a folder), else ``$AMAD_STORE``, else
the ``publish`` section of ``--config`` (default ``./params.yaml``, see ``amad.cli.options``); the model name is ``--model``,
else ``publish.model_name``. S3 endpoint and keys come from the environment
(``source .stack/env`` for the local stack). ``promote`` and ``rollback`` move the champion
pointer with a conditional write, so a concurrent change makes them fail with exit code 8.
``recalibrate`` re-fits the champion's threshold on recent accepted data and publishes a new
version (``amad.detector.recalibrate``); it never moves the pointer (``promote`` does).
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path
from typing import Any

import click

from amad.cli.options import resolve_config, set_option
from amad.errors import ConfigError, CorruptPointerError, DataError, ObjectNotFoundError
from amad.storage.fleet import FleetRow, fleet_rows, format_age
from amad.storage.records import VersionInfo
from amad.storage.registry import Registry, list_models
from amad.storage.store import LocalStore, store_from_config, store_from_uri

STORE_ENV = "AMAD_STORE"


ConfigArgs = tuple[str | None, tuple[str, ...]]  # --config and --set, as _common hands them on


def _registry(store_uri: str | None, model: str | None, config: ConfigArgs) -> Registry:
    cfg = resolve_config(*config).publish
    uri = store_uri or os.environ.get(STORE_ENV)
    try:  # an ftp:// store or a model name with a slash: one line and exit 2, not a traceback
        store = store_from_uri(uri) if uri else store_from_config(cfg)
        return Registry(store, model or cfg.model_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _existing(reg: Registry) -> Registry:
    """``reg`` for a read: a local registry folder that does not exist is an error, not empty."""
    if isinstance(reg.store, LocalStore) and not reg.store.root.is_dir():
        raise ObjectNotFoundError(f"no registry at {reg.store.root} (check --store / ${STORE_ENV})")
    return reg


def _common(command: Any) -> Any:
    @functools.wraps(command)
    def with_config(**kwargs: Any) -> Any:
        kwargs["config"] = (kwargs.pop("config"), tuple(kwargs.pop("sets")))
        return command(**kwargs)

    fn = set_option(with_config)
    fn = click.option("--config", type=click.Path(dir_okay=False),
                      help="params.yaml (default: ./params.yaml when present).")(fn)  # fmt: skip
    fn = click.option("--model", help="Model name (default: publish.model_name).")(fn)
    fn = click.option("--store", "store_uri", help=f"Store URI (default: ${STORE_ENV}).")(fn)
    return fn


def _nonempty(value: str, hint: str) -> None:
    if not value.strip():
        raise click.BadParameter("must name a version, not be empty", param_hint=hint)


def _run_id(run_id: str | None) -> str:
    return run_id or f"cli-{uuid.uuid4().hex[:8]}"


def _row(info: VersionInfo, champion: str | None) -> str:
    metrics = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sorted(info.metrics.items())[:4]
    )
    mark = "*" if info.version == champion else " "
    return (
        f"{mark} {info.version}  {info.created_at}  run={info.run_id}  "
        f"data={info.data_version or '-'}  {metrics}"
    )


@click.group("registry")
def registry_group() -> None:
    """Model versions, the champion pointer and its history."""


@registry_group.command("list")
@_common
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--entity", help="One entity's versions (a fleet: model.scope entity).")
@click.option("--metric", default="vus_pr", show_default=True, help="Metric of the fleet table.")
def list_cmd(
    store_uri: str | None,
    model: str | None,
    config: ConfigArgs,
    as_json: bool,
    entity: str | None,
    metric: str,
) -> None:
    """Complete versions of a model (champion marked with *), then its fleet: one row per entity."""
    reg = _existing(_registry(store_uri, model, config))
    if entity:
        reg = Registry(reg.store, reg.model_name, entity=entity)
    corrupt: CorruptPointerError | None = None
    try:
        champ = reg.champion()
    except CorruptPointerError as exc:  # still list the versions, then fail with exit 6
        champ, corrupt = None, exc
    infos = reg.list_versions()
    fleet = [] if entity else fleet_rows(reg.store, reg.model_name, metric=metric)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": reg.model_name,
                    "entity": reg.entity,
                    "champion": champ.to_dict() if champ else None,
                    "versions": [i.to_dict() for i in infos],
                    "fleet": [row.to_dict() for row in fleet],
                    "champion_error": str(corrupt) if corrupt else None,
                },
                indent=2,
            )
        )
        if corrupt:
            raise corrupt
        return
    others = [m for m in list_models(reg.store) if m != reg.model_name]
    scope = f" entity {reg.entity}" if reg.entity else ""
    click.echo(f"model {reg.model_name}{scope} in {reg.store.uri}")
    none = "champion: CORRUPT (see the error below)" if corrupt else "champion: none"
    click.echo(f"champion: {champ.version} (generation {champ.generation})" if champ else none)
    for info in infos:
        click.echo(_row(info, champ.version if champ else None))
    if not infos:
        click.echo("no versions")
    _echo_fleet(fleet)
    if others:
        click.echo(f"other models: {', '.join(others)}")
    if corrupt:
        raise corrupt


def _echo_fleet(rows: list[FleetRow]) -> None:
    """The fleet table: entity, champion, data version, metric, age, versions."""
    if not rows:
        return
    metric = rows[0].metric
    click.echo(f"fleet: {len(rows)} entities, {sum(r.champion is not None for r in rows)} "
               "with a champion")  # fmt: skip
    click.echo(f"  {'entity':<20} {'champion':<31} {'data version':<14} {metric:>9} "
               f"{'age':>5} {'versions':>8}")  # fmt: skip
    for r in rows:
        value = f"{r.value:.4f}" if r.value is not None else "-"
        click.echo(f"  {r.entity:<20} {r.champion or 'none':<31} {(r.data_version or '-')[:12]:<14} "
                   f"{value:>9} {format_age(r.age_s):>5} {r.versions:>8}")  # fmt: skip


@registry_group.command("show")
@click.argument("version")
@_common
@click.option("--verify", is_flag=True, help="Read every file back and check its sha256.")
def show_cmd(
    version: str, store_uri: str | None, model: str | None, config: ConfigArgs, verify: bool
) -> None:
    """One version's record as JSON (and whether it is the champion)."""
    reg = _registry(store_uri, model, config)
    info = reg.verify(version) if verify else reg.show(version)
    champ = reg.champion()
    out = {**info.to_dict(), "is_champion": bool(champ and champ.version == version)}
    if verify:
        out["verified"] = True
    click.echo(json.dumps(out, indent=2))


@registry_group.command("publish")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_common
@click.option("--run-id", help="Run id recorded with the version.")
@click.option("--data-version", help="Data version the bundle was trained on.")
@click.option("--metrics", "metrics_file", type=click.Path(exists=True, dir_okay=False))
def publish_cmd(
    bundle: Path,
    store_uri: str | None,
    model: str | None,
    config: ConfigArgs,
    run_id: str | None,
    data_version: str | None,
    metrics_file: str | None,
) -> None:
    """Upload a bundle as a new immutable version (idempotent); prints the version id."""
    reg = _registry(store_uri, model, config)
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file else None
    from amad.detector.bundle import load_bundle  # publish only what loads and scores

    version = reg.publish_version(
        bundle, run_id=_run_id(run_id), metrics=metrics, data_version=data_version,
        check=load_bundle,
    )  # fmt: skip
    click.echo(version)


@registry_group.command("promote")
@click.argument("version")
@_common
@click.option("--run-id", help="Run id recorded in the pointer and history.")
@click.option("--reason", default="manual promotion", show_default=True)
def promote_cmd(
    version: str,
    store_uri: str | None,
    model: str | None,
    config: ConfigArgs,
    run_id: str | None,
    reason: str,
) -> None:
    """Make VERSION the champion after verifying every file (repairs a corrupt pointer)."""
    _nonempty(version, "VERSION")
    ptr = _registry(store_uri, model, config).promote(
        version, run_id=_run_id(run_id), reason=reason
    )
    click.echo(f"champion: {ptr.version} (generation {ptr.generation})")


@registry_group.command("rollback")
@_common
@click.option("--to", "to_version", help="An earlier champion (default: the previous one).")
@click.option("--run-id", help="Run id recorded in the pointer and history.")
@click.option("--reason", default="manual rollback", show_default=True)
def rollback_cmd(
    store_uri: str | None,
    model: str | None,
    config: ConfigArgs,
    to_version: str | None,
    run_id: str | None,
    reason: str,
) -> None:
    """Put the previous champion back (repairs a corrupt pointer from the history)."""
    if to_version is not None:
        _nonempty(to_version, "--to")
    ptr = _registry(store_uri, model, config).rollback(
        run_id=_run_id(run_id), reason=reason, to_version=to_version
    )
    click.echo(f"champion: {ptr.version} (generation {ptr.generation})")


@registry_group.command("fetch")
@click.argument("version")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@_common
def fetch_cmd(
    version: str, dest: Path, store_uri: str | None, model: str | None, config: ConfigArgs
) -> None:
    """Download VERSION's bundle into DEST, checking every sha256 ("champion" for the champion)."""
    reg = _registry(store_uri, model, config)
    if version == "champion":
        champ = reg.champion()
        if champ is None:
            raise click.ClickException(f"{reg.model_name} has no champion")
        version = champ.version
    click.echo(str(reg.fetch(version, dest)))


def _recent(cfg: Any, entity: str | None, last_rows: int | None) -> tuple[Any, dict[str, Any]]:
    """The entity's last ``last_rows`` accepted rows (all by default) and their description."""
    from amad.telemetry import dataset, ingest
    from amad.telemetry.schema import Contract

    contract = Contract(cfg.contract)
    available = dataset.entities(cfg.contract.data_dir)
    chosen = entity if entity is not None else (available[0] if len(available) == 1 else None)
    if chosen is None or chosen not in available:
        raise DataError(
            f"name an entity of {cfg.contract.data_dir} with --entity (have {available})"
        )
    frame = dataset.load_dataset(cfg.contract.data_dir, contract, entities=[chosen])
    frame = frame.iloc[-last_rows:] if last_rows else frame
    stamps = frame[contract.timestamp]
    window = {"entity": chosen, "data_version": ingest.data_version(cfg), "rows": len(frame),
              "first": str(stamps.iloc[0]), "last": str(stamps.iloc[-1])}  # fmt: skip
    return frame, window


@registry_group.command("recalibrate")
@click.argument("version", required=False)
@_common
@click.option("--entity", help="The entity (its registry and its rows; default: the only one).")
@click.option(
    "--last-rows", type=click.IntRange(min=1), help="Recent rows to fit on (default all)."
)
@click.option("--data-version", help="Fail unless the dataset is at this version.")
@click.option("--exclude-flagged", is_flag=True, help="Drop steps the current threshold flags.")
@click.option("--run-id", help="Run id recorded with the new version.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/recalibrate"), show_default=True)  # fmt: skip
def recalibrate_cmd(
    version: str | None,
    store_uri: str | None,
    model: str | None,
    config: ConfigArgs,
    entity: str | None,
    last_rows: int | None,
    data_version: str | None,
    exclude_flagged: bool,
    run_id: str | None,
    work_dir: Path,
) -> None:
    """Re-fit the threshold of VERSION (default: the champion) on recent accepted data, same
    weights; publish it as a new version (promote it with `amad registry promote`)."""
    from amad.detector.recalibrate import recalibrate
    from amad.telemetry.schema import Contract

    cfg = resolve_config(*config)
    frame, window = _recent(cfg, entity, last_rows)
    if data_version is not None and data_version != window["data_version"]:
        raise DataError(f"the dataset is at {window['data_version']}, not {data_version}")
    reg = _existing(_registry(store_uri, model, config))
    reg = Registry(reg.store, reg.model_name, entity=window["entity"])  # model.scope: entity
    contract = Contract(cfg.contract)
    labelled = contract.label is not None and contract.label in frame
    labels = frame[contract.label].fillna(0).to_numpy() if labelled else None
    values = frame[contract.metric_names].ffill().bfill().to_numpy(dtype="float32")
    record = recalibrate(
        reg, values, work_dir / uuid.uuid4().hex[:8], run_id=_run_id(run_id), version=version,
        labels=labels, exclude_flagged=exclude_flagged, window=window,
    )  # fmt: skip
    click.echo(
        f"{record.version}: threshold {record.threshold_old:.6g} -> {record.threshold_new:.6g} "
        f"({record.method} on {record.n_fit} steps of {window['entity']} {window['first']} .. "
        f"{window['last']}), recalibrated from {record.recalibrated_from}; not promoted"
    )


def register(group: click.Group) -> None:
    """Attach ``amad registry ...`` to the top-level group."""
    group.add_command(registry_group)
