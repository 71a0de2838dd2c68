"""One simulation from start to report: `simulate(options)`."""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.simulate import results, setup
from app.simulate.api import Api
from app.simulate.market import Market
from app.simulate.population import draw_population
from app.simulate.server import Service, SimClock, started_service, webhook_receiver
from app.simulate.tasks import TASK_TYPES

TYPE_ORDER = ["choices", "multi", "spans", "boxes"]


@dataclass(frozen=True)
class Options:
    seed: int = 1
    annotators: int = 30
    jobs: int = 4
    items: int = 2000  # in all, split evenly over the jobs
    clients: int = 2
    task_types: tuple[str, ...] = tuple(TYPE_ORDER)  # the jobs cycle through these
    database_url: str | None = None  # default: a fresh SQLite file in `workdir`
    base_url: str | None = None  # a running Tessera (with `admin_token`) instead
    admin_token: str | None = None
    secret_key: str | None = None
    workdir: Path = Path(".")
    progress: bool = True


@contextmanager
def _service(options: Options) -> Iterator[Service]:
    if options.base_url is not None:
        if not options.admin_token:
            raise ValueError("--base-url needs --admin-token")
        yield Service(options.base_url, options.admin_token, SimClock(controls_service=False))
        return
    url = options.database_url or f"sqlite:///{options.workdir / f'sim-{uuid.uuid4().hex[:8]}.db'}"
    with started_service(url, options.secret_key) as service:
        yield service


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal (and `enabled`); otherwise silent."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "simulating", BarColumn(), MofNCompleteColumn(), "tasks", TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:  # fmt: skip
        task = bar.add_task("simulating", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield show


def simulate(options: Options) -> dict[str, Any]:
    """Run one seeded simulation and return its report (see `report.write_report`)."""
    rng = random.Random(options.seed)  # noqa: S311 (a seeded simulation, not a secret)
    started = time.monotonic()
    with ExitStack() as stack:
        service = stack.enter_context(_service(options))
        receiver = stack.enter_context(webhook_receiver()) if options.base_url is None else None
        show = stack.enter_context(_progress_bar(options.progress))
        api = Api(service.base_url)
        stack.callback(api.close)
        admin = service.admin_token
        world = setup.World()
        types = [options.task_types[n % len(options.task_types)] for n in range(options.jobs)]
        setup.create_tests(api, admin, rng, world, sorted(set(types)))
        clients = [setup.Client(index=n) for n in range(options.clients)]
        for client in clients:
            secret = setup.open_client(
                api, admin, client, options.seed, receiver.url if receiver else None
            )
            if receiver is not None and secret is not None:
                receiver.secrets.append(secret)
        people = draw_population(rng, options.annotators)
        run_tag = uuid.uuid4().hex[:6]
        for person in people:
            person.token, person.user_id = setup.sign_up(
                api, "annotator", f"sim{options.seed}-{run_tag}-{person.label}@example.com",
                person.label,
            )  # fmt: skip
            setup.qualify(api, rng, world, person)
        per_job = max(10, options.items // max(1, options.jobs))
        jobs = []
        for n, name in enumerate(types):
            job = setup.Job(
                index=n,
                client=clients[n % len(clients)],
                task=TASK_TYPES[name],
                items=per_job,
                gold=max(2, round(per_job * setup.GOLD_SHARE)),
            )
            setup.post_job(api, rng, world, job)
            job.activated_at = service.clock.now
            jobs.append(job)
        total_tasks = [0]

        def tick(done: int) -> None:
            total_tasks[0] = max(total_tasks[0], sum(j.total_tasks for j in jobs))
            show(done, total_tasks[0])

        market = Market(api, service.clock, rng, world, admin, clients, jobs, people, tick)
        timings = {"setup": time.monotonic() - started}
        market.run()
        timings["market"] = time.monotonic() - started - timings["setup"]
        paid_at = results.close_market(market)
        report = results.measure(market, paid_at, receiver, time.monotonic() - started)
        timings["close_and_measure"] = time.monotonic() - started - sum(timings.values())
        report["wall_seconds_by_phase"] = {k: round(v, 1) for k, v in timings.items()}
        report["options"] = {
            "seed": options.seed,
            "annotators": options.annotators,
            "jobs": options.jobs,
            "items": options.items,
            "clients": options.clients,
            "database": "postgresql" if "postgresql" in (options.database_url or "") else (
                "running server" if options.base_url else "sqlite"
            ),
        }  # fmt: skip
        report["api_calls"] = {
            route: {"calls": n, "seconds": round(api.seconds[route], 2)}
            for route, n in api.calls.most_common()
        }
        return report
