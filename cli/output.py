"""What the commands print: every control character escaped, errors as one line and exit status 2."""

from __future__ import annotations

import typer

from erag.textsafe import printable


def echo(message: object = "", **style) -> None:
    """Print like typer.secho, with every control character escaped: file names, document text and answers
    come from files anyone could have written, and an escape sequence must never reach the terminal raw."""
    typer.secho("\n".join(printable(line) for line in str(message).split("\n")), **style)


def fail(message: str) -> None:
    echo(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)
