"""`tessera`: the command line (serve, migrate, worker, scheduler, admin)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from app.core.db import Database
from app.core.errors import TesseraError
from app.core.observability import configure_logging
from app.core.schema import current_revision, head_revision, is_at_head, upgrade_to_head
from app.core.settings import Settings, SettingsError, load_settings

cli = typer.Typer(
    help="Tessera: crowdsourcing marketplace backend for data labeling.",
    no_args_is_help=True,
    add_completion=False,
)
admin_cli = typer.Typer(help="Administrator accounts.", no_args_is_help=True)
cli.add_typer(admin_cli, name="admin")

out = Console()
err = Console(stderr=True)

FIRST_ADMIN_EMAIL = "admin@example.com"


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@cli.command()
def migrate(
    check: Annotated[bool, typer.Option(help="Only report whether the schema is at head")] = False,
) -> None:
    """Upgrade the database schema to the latest migration."""
    settings = _settings()
    db = Database(settings)
    try:
        if check:
            current, head = current_revision(db.engine), head_revision()
            out.print(f"current: {current}  head: {head}")
            raise typer.Exit(0 if current == head else 1)
        upgrade_to_head(db.engine)
        out.print(f"schema at {head_revision()}")
    finally:
        db.dispose()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    job_threads: Annotated[
        int, typer.Option(min=1, help="Threads for background jobs when there is no broker")
    ] = 2,
) -> None:
    """Run the API. The embedded default (SQLite) migrates its file itself; on PostgreSQL the
    schema must be at head (`tessera migrate`). Without TESSERA_BROKER_URL, background jobs and
    the scheduler run on threads of this process."""
    import uvicorn

    from workers.in_process import InProcessRunner

    settings = _settings()
    configure_logging(settings.log_level.value, settings.log_json)
    db = Database(settings)
    try:
        if settings.is_sqlite:
            upgrade_to_head(db.engine)
        elif not is_at_head(db.engine):
            err.print(
                "[red]The database schema is not at the latest migration. "
                "Run `tessera migrate` first.[/red]"
            )
            raise typer.Exit(1)
        if settings.embedded:
            _first_run_bootstrap(db, host, port)
    finally:
        db.dispose()
    runner = None
    if settings.in_process_jobs:
        runner = InProcessRunner(settings, Database(settings), threads=job_threads)
        runner.start()
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the
        # handlers it found: make that an orderly exit, so the jobs below get stopped too.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _exit_cleanly)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=True,
        )
    finally:
        if runner is not None:
            runner.stop()
            runner.db.dispose()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _require_schema_at_head(settings: Settings) -> None:
    db = Database(settings)
    try:
        if not is_at_head(db.engine):
            err.print(
                "[red]The database schema is not at the latest migration. "
                "Run `tessera migrate` first.[/red]"
            )
            raise typer.Exit(1)
    finally:
        db.dispose()


@cli.command()
def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process")] = 4,
    queue: Annotated[
        list[str] | None, typer.Option(help="Only consume this queue (repeatable); default all")
    ] = None,
    shutdown_timeout: Annotated[
        float, typer.Option(help="Seconds running jobs get to finish on SIGTERM")
    ] = 600.0,
) -> None:
    """Run background workers (Dramatiq) against TESSERA_BROKER_URL. Each process also relays
    the outbox and reports a heartbeat. SIGTERM or Ctrl-C shuts down gracefully."""
    from workers.entry import run_worker

    settings = _settings()
    if settings.broker_url is None:
        err.print(
            "[red]TESSERA_BROKER_URL is not set: without a broker, background jobs run inside "
            "`tessera serve`.[/red]"
        )
        raise typer.Exit(2)
    _require_schema_at_head(settings)
    configure_logging(settings.log_level.value, settings.log_json)
    code = run_worker(
        processes=processes,
        threads=threads,
        queues=queue or (),
        shutdown_timeout=shutdown_timeout,
    )
    raise typer.Exit(code)


@cli.command()
def scheduler(
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between ticks")] = 1.0,
) -> None:
    """Run the scheduler: enqueue periodic jobs on time. Safe to run more than one (each tick is
    enqueued once). Without a broker it also runs inside `tessera serve`."""
    from workers.entry import run_scheduler

    settings = _settings()
    _require_schema_at_head(settings)
    configure_logging(settings.log_level.value, settings.log_json)
    raise typer.Exit(run_scheduler(poll=poll))


def _first_run_bootstrap(db: Database, host: str, port: int) -> None:
    """On a new embedded database, create an administrator and print how to start."""
    from app.accounts import service

    with db.transaction() as session:
        if service.count_admins(session):
            return
        _, issued = service.create_admin(
            session, email=FIRST_ADMIN_EMAIL, display_name="Administrator", password=None
        )
    base = f"http://{host}:{port}"
    out.rule("Tessera is ready")
    # Plain print: these lines are meant to be copied, so they must not be wrapped.
    print(f"API docs:     {base}/docs")
    print(f"Admin token:  {issued.secret}   (shown once; {FIRST_ADMIN_EMAIL})")
    print(f"Try:          curl -H 'Authorization: Bearer {issued.secret}' {base}/v1/me")
    out.rule()


@admin_cli.command("create")
def admin_create(
    email: Annotated[str, typer.Option(help="The administrator's email")],
    name: Annotated[str, typer.Option(help="Display name")] = "Administrator",
    password: Annotated[bool, typer.Option(help="Also set a password (prompted)")] = False,
) -> None:
    """Create an administrator and print an API token for them (shown once)."""
    from app.accounts import service

    settings = _settings()
    db = Database(settings)
    try:
        if not is_at_head(db.engine):
            err.print(
                "[red]The database schema is not at the latest migration. "
                "Run `tessera migrate` first.[/red]"
            )
            raise typer.Exit(1)
        secret = (
            typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            if password
            else None
        )
        with db.transaction() as session:
            user, issued = service.create_admin(
                session,
                email=service.ensure_valid_email(email),
                display_name=name,
                password=secret,
            )
    except TesseraError as exc:
        err.print(f"[red]{exc.detail or exc.title}[/red]")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    out.print(f"admin {user.email} (id {user.id}) created")
    print(issued.secret)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
