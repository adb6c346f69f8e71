"""``amad stack up|down|status``: the local S3 server (and optionally a Prefect server).

``up`` starts SeaweedFS on 127.0.0.1 with per-stack SigV4 keys and versioned buckets, and with
``--server`` a Prefect server with process work pools ``cpu`` and ``gpu``; then
``source .stack/env`` points boto3, DVC and Prefect at them. ``down`` stops only what ``up``
started. See ``amad.devstack.stack`` for the state folder's layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from amad.devstack.stack import DEFAULT_DIR, stack_down, stack_status, stack_up

_DIR = click.option(
    "--dir",
    "state_dir",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="State folder (pids, ports, credentials, env file, data).",
)


def _describe(status: dict[str, Any]) -> None:
    s3, prefect = status.get("s3"), status.get("prefect")
    if not s3 and not prefect:
        click.echo(f"nothing recorded in {status['dir']}")
        return
    for name, service, url in (("s3", s3, "endpoint"), ("prefect", prefect, "api_url")):
        if service:
            state = (
                "healthy" if service["healthy"] else "running" if service["running"] else "stopped"
            )
            click.echo(f"{name:8s} {state:8s} pid={service.get('pid')}  {service.get(url)}")
    if prefect and prefect.get("ui_url"):
        click.echo(f"ui:      {prefect['ui_url']}")
    click.echo(f"env:     source {status['env_file']}")


@click.group("stack")
def stack_group() -> None:
    """The local stack: a real S3 server on 127.0.0.1 (and optionally a Prefect server)."""


@stack_group.command("up")
@_DIR
@click.option("--s3-port", type=click.IntRange(1, 65535), help="S3 port (default: a free one).")
@click.option("--server", is_flag=True, help="Also start a Prefect server with cpu/gpu pools.")
@click.option("--prefect-port", type=click.IntRange(1, 65535), help="Prefect server port.")
def up_cmd(state_dir: Path, s3_port: int | None, server: bool, prefect_port: int | None) -> None:
    """Start what is not already running."""
    _describe(stack_up(state_dir, s3_port=s3_port, server=server, prefect_port=prefect_port))


@stack_group.command("down")
@_DIR
def down_cmd(state_dir: Path) -> None:
    """Stop the services ``up`` started (and only those)."""
    stopped = stack_down(state_dir)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")


@stack_group.command("status")
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(state_dir: Path, as_json: bool) -> None:
    """What runs, where, and whether it answers."""
    status = stack_status(state_dir)
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        _describe(status)


def register(group: click.Group) -> None:
    """Attach ``amad stack ...`` to the top-level group."""
    group.add_command(stack_group)
