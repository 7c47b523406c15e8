"""`python -m cli ...`: the `erag` command without the installed script."""

from cli import app

app()
