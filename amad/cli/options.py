"""The configuration every ``amad`` command reads, resolved one way: ``--config`` and ``--set``.

``resolve_config(path, sets)`` loads ``path`` when given; without it ``./params.yaml`` is loaded
when it exists (so a command run in the repository root sees the same parameters as
``dvc repro``), else the built-in defaults. ``--set key=value`` (repeatable) overrides a dotted
key after the file; ``extra`` holds overrides the command derived from its own options.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from amad import config
from amad.config import AmadConfig, parse_override

log = logging.getLogger(__name__)


def resolve_config(
    path: str | Path | None,
    sets: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> AmadConfig:
    """The validated config of a command: file (or ./params.yaml), then ``--set``, then ``extra``."""
    overrides = dict(parse_override(s) for s in sets)
    overrides.update(extra or {})
    return config.resolve_config(path, overrides)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="params.yaml to load (default: ./params.yaml when present, else built-in defaults).",
)  # fmt: skip
set_option = click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE",
    help="Dotted-key override, e.g. train.epochs=2 (repeatable).",
)  # fmt: skip
