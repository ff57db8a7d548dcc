"""The `recommender` command. Thin: parse, call one library function, render, exit code.

Every RecommenderError and every usage error ends as one line on stderr,
`Error: <what> (<how to fix>)`, and a non-zero exit code; never a traceback.

    app.py          the Typer app, echo, asks
    flags.py        flags several commands share: aliases and flag groups (one options object)
    measure.py      serve, loadtest, run, worker, collect, demo
    analyse.py      analyze, report, compare, simulate
    autoscaling.py  apply, rollback
    sweep.py        host (the local hosting layer), sweep, cleanup

Importing the modules registers their commands, in the order `--help` lists them.
"""

from __future__ import annotations

import typer

# Typer (>= 0.29) vendors click; its usage errors are only importable from there.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from recommender import __version__

# Importing a module registers its commands; `--help` lists them in this order.
from recommender.cli import measure  # noqa: F401

# isort: split
from recommender.cli import analyse  # noqa: F401

# isort: split
from recommender.cli import autoscaling  # noqa: F401

# isort: split
from recommender.cli import sweep  # noqa: F401

# isort: split
from recommender.cli.app import app, echo
from recommender.errors import RecommenderError

__all__ = ["app", "main"]


@app.command()
def version() -> None:
    """Print the version."""
    echo(__version__)


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="recommender", standalone_mode=False)
    except RecommenderError as exc:
        typer.echo(f"Error: {exc.one_line()}", err=True)
        return exc.exit_code
    except NoArgsIsHelpError:
        typer.echo(command.get_help(typer.Context(command)))
        return 0
    except UsageError as exc:
        where = f"{exc.ctx.command_path} --help" if exc.ctx else "recommender --help"
        message = " ".join(exc.format_message().split())
        typer.echo(f"Error: {message} (see {where})", err=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("Aborted.", err=True)
        return 130
    return result if isinstance(result, int) else 0
