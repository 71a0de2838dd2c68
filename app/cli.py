"""`tessera`: the command line (serve, migrate, worker, scheduler, admin, import, export,
aggregate, simulate)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from app.core.db import Database
from app.core.errors import NotFound, TesseraError
from app.core.observability import configure_logging
from app.core.settings import Settings, SettingsError, load_settings
from migrations.schema import current_revision, head_revision, is_at_head, upgrade_to_head

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

    from app.core.slow_clients import http_protocol
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
        if settings.embedded or settings.demo_enabled:
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
            http=http_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds),
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
    """On a new database, create an administrator (embedded default only) and the demo content
    (TESSERA_DEMO), and print how to start."""
    from app.accounts import service
    from app.jobs.demo import create_demo

    settings = db.settings
    with db.transaction() as session:
        if service.count_admins(session) or service.count_users(session):
            return
        admin = (
            service.create_admin(
                session, email=FIRST_ADMIN_EMAIL, display_name="Administrator", password=None
            )[1]
            if settings.embedded
            else None
        )
        demo = create_demo(session) if settings.demo_enabled else None
    base = f"http://{host}:{port}"
    auth = "curl -H 'Authorization: Bearer {}'"
    out.rule("Tessera is ready")
    # Plain print: these lines are meant to be copied, so they must not be wrapped.
    print(f"API docs:         {base}/docs")
    if admin is not None:
        print(f"Admin token:      {admin.secret}   ({FIRST_ADMIN_EMAIL}; shown once)")
        print(f"  {auth.format(admin.secret)} {base}/v1/me")
    if demo is not None:
        print(f"Demo client:      {demo.client_token}")
        print(f"Demo annotator:   {demo.annotator_token}")
        print(f"  {auth.format(demo.client_token)} {base}/v1/jobs/{demo.job_id}/progress")
        print(f"  {auth.format(demo.annotator_token)} -X POST {base}/v1/assignments/next")
        print(
            f"  {auth.format(demo.client_token)} '{base}/v1/jobs/{demo.job_id}/export?format=csv'"
        )
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
    _require_schema_at_head(settings)
    db = Database(settings)
    try:
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


@cli.command("import")
def import_command(
    job_id: Annotated[int, typer.Argument(help="The job to import into")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV/JSON/JSONL[.gz]")],
    mode: Annotated[str, typer.Option(help="all-or-nothing or skip-invalid")] = "all-or-nothing",
    fmt: Annotated[str | None, typer.Option("--format", help="csv, json or jsonl")] = None,
    annotations: Annotated[
        str, typer.Option(help="Label Studio tasks' annotations: report or gold")
    ] = "report",
    external_id_field: Annotated[
        str | None,
        typer.Option(help="The column or key holding each row's external id (default: the job's)"),
    ] = None,
) -> None:
    """Import a dataset file into a job, with a progress bar (same rules as the API: the file is
    read and checked first, holding no lock, then inserted in one transaction)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from app.jobs import dataset_files, importing
    from app.jobs.label_studio import AnnotationUse
    from app.jobs.service import job_schema
    from app.models.jobs import Job

    settings = _settings()
    fmt_value = (
        dataset_files.ImportFormat(fmt) if fmt else dataset_files.detect_format(path.name, None)
    )
    if fmt_value is None:
        err.print("[red]Cannot tell the format from the file name; pass --format[/red]")
        raise typer.Exit(2)
    db = Database(settings)
    size = path.stat().st_size
    try:
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[rows]}"),
                TimeElapsedColumn(),
                console=err,
            ) as bar,
            path.open("rb") as raw,
            db.session() as session,
        ):
            task = bar.add_task(f"importing {path.name}", total=size, rows="")

            def show(result: importing.ImportResult) -> None:
                bar.update(
                    task,
                    completed=raw.tell(),
                    rows=f"{result.rows_read:,} rows, {result.rejected:,} rejected",
                )

            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"No job {job_id}")
            target = importing.ImportTarget.of(session, job, job_schema(job), external_id_field)
            session.commit()
            with importing.check_dataset(
                target,
                raw,
                fmt_value,
                importing.ImportMode(mode),
                limits=importing.ImportLimits.of(settings),
                look_up=importing.reading_look_up(db, job_id),
                annotations=AnnotationUse(annotations),
                progress=show,
            ) as staged:
                job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
                if job is None:
                    raise NotFound(f"No job {job_id}")
                result = importing.write_staged(session, job, staged)
                session.commit()
    except TesseraError as exc:
        err.print(f"[red]{exc.detail or exc.title}[/red]")
        for error in exc.errors[:20]:
            err.print(f"  line {error.get('line')}: {error.get('detail')}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    out.print(
        f"{result.created:,} created, {result.unchanged:,} unchanged, "
        f"{result.rejected:,} rejected, {result.tasks_created:,} tasks created"
    )


@cli.command("export")
def export_command(
    job_id: Annotated[int, typer.Argument(help="The job to export")],
    output: Annotated[Path, typer.Argument(dir_okay=False, help="File to write ('-': stdout)")],
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv, label-studio or coco")
    ] = "jsonl",
    include_gold: Annotated[bool, typer.Option(help="Also export gold items")] = False,
) -> None:
    """Export a job's results (same content as the API's export)."""
    from app.jobs.export import stream_export
    from app.jobs.label_studio import job_view
    from app.jobs.service import job_schema
    from app.models.jobs import Job

    settings = _settings()
    db = Database(settings)
    try:
        with db.read_session() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"No job {job_id}")
            schema, client_id = job_schema(job), job.client_id
            targets = job_view(job, schema).targets
        body = stream_export(db, job_id, client_id, schema, fmt, include_gold, targets=targets)
        target = sys.stdout.buffer if str(output) == "-" else output.open("wb")
        try:
            for chunk in body:
                target.write(chunk)
        finally:
            if target is not sys.stdout.buffer:
                target.close()
    except TesseraError as exc:
        err.print(f"[red]{exc.detail or exc.title}[/red]")
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@cli.command("aggregate")
def aggregate_command(
    labels: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV/TSV: item, annotator, label")
    ],
    method: Annotated[
        str, typer.Option(help="majority_vote, weighted_vote, dawid_skene, calibrated_dawid_skene")
    ] = "calibrated_dawid_skene",
    gold: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="CSV: item, label")
    ] = None,
    skills: Annotated[bool, typer.Option(help="Print the annotator skill table to stderr")] = False,
    skills_file: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the annotator skill table here")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the tie-break")] = 0,
    label_order: Annotated[
        str | None,
        typer.Option(
            "--labels", help="Comma-separated label order (a job's schema's), for tie-breaks"
        ),
    ] = None,
) -> None:
    """Aggregate labels collected anywhere (Tessera, MTurk, Toloka exports): writes
    item,label,confidence to stdout. With --gold, gold items are clamped to their answers and
    the consensus is scored on them by cross-fitting."""
    from app.consensus import offline
    from app.consensus.methods import Method

    try:
        chosen = Method(method)
    except ValueError:
        err.print(f"[red]Unknown method {method!r}; one of {', '.join(Method)}[/red]")
        raise typer.Exit(2) from None
    try:
        answers = offline.read_labels(labels)
        known = offline.read_gold(gold) if gold is not None else None
    except (offline.LabelFileError, UnicodeDecodeError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    order = [label.strip() for label in label_order.split(",")] if label_order else None
    result = offline.aggregate_labels(answers, chosen, known, seed, order)
    offline.write_consensus(result, sys.stdout)
    votes = result.votes
    skipped = [
        f"{n:,} {what}"
        for n, what in (
            (answers.empty, "incomplete rows"),
            (answers.rejected, "rejected answers"),
        )
        if n
    ]
    typer.echo(
        f"{votes.n_items:,} items, {votes.n_annotators:,} annotators, {votes.size:,} answers"
        + (f"; skipped {', '.join(skipped)}" if skipped else "")
        + (f"; {answers.repeated:,} repeated answers share a vote" if answers.repeated else "")
        + f"; method {result.method}"
        + (f" (fallback from {chosen})" if result.method != chosen else ""),
        err=True,
    )
    if result.gold_score is not None:
        score = result.gold_score
        typer.echo(
            f"accuracy on gold {100 * score.accuracy:.2f}% over {score.n:,} items "
            f"(each predicted with the other folds' gold given), ECE {score.ece:.4f}",
            err=True,
        )
    if skills:
        offline.write_skills(result, sys.stderr)
    if skills_file is not None:
        with skills_file.open("w", newline="") as file:
            offline.write_skills(result, file)


@cli.command("simulate")
def simulate_command(
    seed: Annotated[int, typer.Option(help="Seed of the simulation")] = 1,
    annotators: Annotated[int, typer.Option(min=1, help="Annotators (all kinds)")] = 30,
    jobs: Annotated[int, typer.Option(min=1, help="Jobs (task types in turn)")] = 4,
    items: Annotated[int, typer.Option(min=10, help="Items in all, split over the jobs")] = 2000,
    clients: Annotated[int, typer.Option(min=1, help="Clients posting the jobs")] = 2,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database of the Tessera to start (default: a new SQLite file)"),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Run against this running Tessera instead of starting one")
    ] = None,
    admin_token: Annotated[
        str | None, typer.Option(help="An admin token of the Tessera at --base-url")
    ] = None,
    output: Annotated[Path, typer.Option(file_okay=False, help="Directory for the report")] = Path(
        "simulation"
    ),
) -> None:
    """A marketplace in a box: clients, annotators (honest, drop-outs, drifters, spammers, bots)
    and an admin use Tessera over HTTP; writes report.md, report.json (and PNG plots with the
    `plots` extra) and exits 1 when a promise of the market failed."""
    import os

    from app.simulate.report import checks, write_report
    from app.simulate.run import Options, simulate

    output.mkdir(parents=True, exist_ok=True)
    options = Options(
        seed=seed,
        annotators=annotators,
        jobs=jobs,
        items=items,
        clients=clients,
        database_url=database_url,
        base_url=base_url,
        admin_token=admin_token,
        secret_key=os.environ.get("TESSERA_SECRET_KEY"),
        workdir=output,
    )
    try:
        report = simulate(options)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for path in write_report(report, output):
        out.print(f"wrote {path}")
    verdicts = checks(report)
    for name, ok in verdicts.items():
        out.print(f"{'PASS' if ok else 'FAIL'}  {name}")
    raise typer.Exit(0 if all(verdicts.values()) else 1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
