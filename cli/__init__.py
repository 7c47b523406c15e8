"""`erag`: ingest files, inspect and search the index from the command line.

The CLI, the app and the tests call the same pipeline classes; this package only parses arguments and prints.
It is the top layer (it may import every other package): this module builds the typer app, one module per
command group holds the commands (`index_commands`, `search_commands`, `eval_commands`, `admin_commands`),
and `output` prints. Run it as `erag` (the installed script) or `python -m cli`.
"""

from __future__ import annotations

import typer

from cli import admin_commands, eval_commands, index_commands, search_commands

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enterprise RAG: ingest, search, evaluate.")


@app.callback()
def _private_files() -> None:
    # Everything erag writes, and what it starts (the chat page through os.execv, worker processes), is owner-only.
    from erag.home import restrict_new_files

    restrict_new_files()


# In the order `erag --help` lists them.
app.command()(index_commands.ingest)
app.command()(index_commands.meta)
app.command()(search_commands.search)
app.command()(search_commands.tables)
app.command()(index_commands.stats)
app.command()(index_commands.delete)
app.command("eval")(eval_commands.evaluate)
app.command()(search_commands.ask)
app.command()(admin_commands.serve)
app.command()(admin_commands.worker)
app.command()(admin_commands.jobs)
app.command("train-reranker")(eval_commands.train_reranker)

feedback_app = typer.Typer(no_args_is_help=True, help="Ratings given to chat answers.")
feedback_app.command("export")(eval_commands.feedback_export)
app.add_typer(feedback_app, name="feedback")

user_app = typer.Typer(no_args_is_help=True, help="Users of the web app (the users file, ERAG_USERS_FILE).")
user_app.command("add")(admin_commands.user_add)
app.add_typer(user_app, name="user")
