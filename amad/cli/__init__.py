"""The ``amad`` command line: one click group, subcommands contributed by sibling modules.

Each module in ``COMMAND_MODULES`` defines ``register(group)``. Library errors (``AmadError``)
become a one-line message on stderr and the exit code from ``amad.errors.EXIT_CODES``; nothing
else but ``OSError`` (a full disk, a name too long: one line, exit 1) is caught, so real
bugs keep their tracebacks.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from amad import __version__
from amad.errors import AmadError, exit_code_for
from amad.logs import quiet_libraries

COMMAND_MODULES: tuple[str, ...] = ("bench", "data", "model", "registry", "stack")


def configure_logging(verbose: int) -> None:
    """Default: INFO from amad, WARNING from libraries; ``-v``: DEBUG from amad; ``-vv``: all."""
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("amad").setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet_libraries(logging.DEBUG if verbose >= 2 else logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amad")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """AMAD anomaly detection: train, score, benchmark, ingest, publish."""
    configure_logging(verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f"amad.cli.{_name}").register(cli)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map library errors to exit codes."""
    try:
        cli.main(args=argv, prog_name="amad", standalone_mode=False)
    except AmadError as exc:
        click.echo(f"amad: error: {exc}", err=True)
        sys.exit(exit_code_for(exc))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:  # the machine, not a bug: a full disk, a name too long, a lost file
        click.echo(f"amad: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(0)
