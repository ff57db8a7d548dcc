"""The Typer app every command registers on, and the two things every command uses: where
output goes and how it asks."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts show defaults in [brackets]: plain text, not Rich markup that would eat them.
    rich_markup_mode=None,
    help="Load-test a SageMaker endpoint and size its target-tracking autoscaling policy.",
)


def echo(text: str) -> None:
    typer.echo(text)


def echo_err(text: str) -> None:
    """Progress, when stdout is kept for a machine-readable result (--json)."""
    typer.echo(text, err=True)


def asks(yes: bool) -> Callable[[str], bool]:
    """Ask only on a terminal; scripts and CI never block on a prompt."""
    return lambda message: yes or not sys.stdin.isatty() or typer.confirm(message, default=True)
