"""`erag serve`, `worker`, `jobs` and `user add`: running the chat page and ingestion workers, users."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.output import echo, fail
from erag.settings import get_settings


def serve(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "localhost",
) -> None:
    """Start the chat page in the browser (Streamlit)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("app.streamlit_app")
    if spec is None or spec.origin is None:
        fail("the chat page (app/streamlit_app.py) is not installed: run `make install`")
    args = [sys.executable, "-m", "streamlit", "run", str(spec.origin), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            # The browser refuses files over the upload limit before sending them (the page checks again).
            "--server.maxUploadSize", str(max(1, round(get_settings().max_file_mb)))]
    echo(f"chat page on http://{host}:{port}")
    os.execv(sys.executable, args)


def worker(
    parent_pid: Annotated[int | None, typer.Option(help="Stop when this process (the app) exits.")] = None,
) -> None:
    """Run ingestion jobs from the queue (files uploaded on the admin page) until stopped with Ctrl-C."""
    from index.store import StoreError
    from jobs.queue import QueueError
    from jobs.worker import serve

    try:
        serve(get_settings(), parent_pid=parent_pid)
    except (QueueError, StoreError) as exc:
        fail(str(exc))


def jobs(limit: Annotated[int, typer.Option(min=1, max=10_000, help="Latest jobs shown.")] = 30) -> None:
    """Ingestion jobs, newest first: file, status (queued, parsing, ..., indexed, failed) and the reason."""
    from erag.db import ChatDatabase
    from jobs.board import JobBoard

    settings = get_settings()
    board = JobBoard(ChatDatabase.from_settings(settings), settings.job_lease_s, settings.job_max_attempts)
    rows = board.recent(limit)
    if not rows:
        echo("no jobs yet (upload files on the admin page)")
    for job in rows:
        detail = job.reason or (f"{job.chunks} chunks, {job.outcome}" if job.status == "indexed" else "")
        echo(f"{job.id:>6}  {job.status:9}  {job.file_name}" + (f": {detail}" if detail else ""))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(board.counts().items()))
    echo(f"total: {counts or 'none'}")


def user_add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower case).")],
    name: Annotated[str, typer.Option(help="Full name shown on the pages.")] = "",
    groups: Annotated[str, typer.Option(help="Comma-separated access groups.")] = "all",
    admin: Annotated[bool, typer.Option("--admin", help="May open the admin page.")] = False,
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
) -> None:
    """Add a user (or set a user's password, name and groups again); the password is asked for, then hashed."""
    from app.accounts import AccountError, add_user, check_username, create_users_file
    from erag.access import parse_groups

    path = get_settings().users_path
    try:
        check_username(username)
    except AccountError as exc:
        fail(str(exc))
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    group_list = [g for g in parse_groups(groups) if g]
    try:
        if path.exists():
            add_user(path, username, name, password, group_list, admin, email)
        elif admin:
            create_users_file(path, username, name, password, group_list, email)
        else:
            fail(f"{path} does not exist yet: add an administrator first (--admin)")
    except AccountError as exc:
        fail(str(exc))
    echo(f"{'admin' if admin else 'user'} {username} ({', '.join(group_list)}) saved in {path}")
