"""Benchmark: annotators doing next → submit over HTTP against a large task pool on PostgreSQL,
beside the same transactions issued as raw SQL with psycopg (the ceiling), in the same run.

    python bench/claim_submit.py --tasks 1000000 --clients 64 --seconds 30

A uvicorn server runs `tessera serve` as in production (one process, with a broker set, so
background jobs are left to worker processes as in production and do not run in it). Two HTTP
phases:

1. saturation: every annotator loops next -> submit with no pause; gives the most cycles/s.
   With 64 annotators always waiting on the server, latency there is queueing (by Little's
   law, mean latency = 64 / requests per second), so it is reported but is not the latency
   target.
2. paced: every annotator spends a random time on each task (between next and submit) chosen
   so that together they offer the target throughput, 30% of the raw ceiling; gives the
   latency of next and submit at that load.

Then the earnings poster writes the ledger entries of every submit of the run, as the
scheduler does every few seconds in production (submit itself writes none), and its CPU per
submit is reported beside the cycle's.

Prints cycles/s, p50 and p99 latency of next and submit, the raw ceiling, their ratio, the
CPU per cycle of the server and of the database, the poster's CPU per submit, and a final JSON
line. Targets (issue #7): HTTP cycles/s >= 30% of the raw ceiling; p99 of next
<= 50 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("TESSERA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/")
SCHEMA = {
    "controls": [
        {
            "name": "sentiment",
            "type": "choices",
            "field": "text",
            "labels": ["positive", "negative", "neutral"],
        },
    ]
}
SECRET = "bench-secret-" + "k" * 32
TARGET_SHARE = 0.30  # of the raw ceiling's cycles/s
METRICS_TOKEN = "bench-metrics-" + "m" * 32
BENCH_BROKER = os.environ.get("TESSERA_BENCH_BROKER", "redis://127.0.0.1:6379/15")

RAW_CLAIM = """
WITH picked AS (
    SELECT t.id FROM tasks t
    WHERE t.job_id = %(job)s AND t.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM assignments a
                      WHERE a.task_id = t.id AND a.annotator_id = %(me)s OFFSET 0)
    ORDER BY t.order_key, t.id LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
), bumped AS (
    UPDATE tasks t SET live_count = t.live_count + 1,
        status = CASE WHEN t.live_count + 1 + t.done_count >= t.overlap_target
                      THEN 'full' ELSE 'open' END
    FROM picked WHERE t.id = picked.id RETURNING t.id
)
INSERT INTO assignments (task_id, job_id, annotator_id, status, claimed_at, lease_expires_at,
                         last_seen_at, active_seconds)
SELECT id, %(job)s, %(me)s, 'active', now(), now() + interval '10 minutes', now(), 0 FROM bumped
RETURNING id, task_id
"""
RAW_SUBMIT = [
    "UPDATE assignments SET status = 'submitted', submitted_at = now() WHERE id = %(a)s",
    "INSERT INTO answers (assignment_id, job_id, item_id, annotator_id, value, created_at) "
    "SELECT %(a)s, %(job)s, ti.item_id, %(me)s, %(v)s, now() FROM task_items ti "
    "WHERE ti.task_id = %(t)s",
    "UPDATE tasks SET live_count = live_count - 1, done_count = done_count + 1, "
    "status = CASE WHEN done_count + 1 >= overlap_target THEN 'complete' ELSE status END "
    "WHERE id = %(t)s",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(url: str, tasks: int, clients: int) -> dict[str, Any]:
    from app.accounts import service as accounts
    from app.core.db import Database
    from app.core.security import Principal
    from app.core.settings import Settings
    from app.jobs import importing, schemas, service, splitting
    from app.models.accounts import Role
    from migrations.schema import upgrade_to_head
    from payouts import funding

    db = Database(Settings(database_url=url, secret_key=SECRET, _env_file=None))  # type: ignore[call-arg]
    upgrade_to_head(db.engine)
    with db.transaction() as session:
        owner, _ = accounts.create_account_with_token(
            session, email="bench-client@example.com", display_name="c", role=Role.client
        )
        people = [
            accounts.create_account_with_token(
                session, email=f"a{n}@example.com", display_name=f"a{n}", role=Role.annotator
            )
            for n in range(clients * 2)
        ]
        body = schemas.JobCreate(
            title="bench",
            label_schema=SCHEMA,
            pricing=schemas.Pricing(rate_micros=1000),
            overlap=schemas.Overlap(min=3),
        )
        funding.credit_manually(session, owner.id, 10**15, actor_id=None, reason="bench balance")
        job = service.create_job(session, Principal(user=owner, token_id=0), body)
        rows = io.BytesIO(
            b"".join(
                json.dumps({"text": f"review {n} " + "lorem ipsum " * 8}).encode() + b"\n"
                for n in range(tasks)
            )
        )
        importing.import_dataset(
            session, job, service.job_schema(job), rows, importing.ImportFormat.jsonl
        )
        service.change_status(session, job, "activate")
        splitting.split_into_tasks(session, job)
        job_id = job.id
        ids = [(u.id, token) for u, token in people]
    db.dispose()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"job_id": job_id, "annotators": ids}


def post_earnings(url: str, database: str) -> dict[str, Any]:
    """The earnings of the run's submits, written afterwards by the poster as the scheduler
    runs it (submit itself writes none): CPU per posted submit, of this process and of the
    database's backends, so its cost is counted beside the cycle's."""
    from sqlalchemy import text

    from app.core.db import Database
    from app.core.settings import Settings
    from payouts import earnings

    db = Database(Settings(database_url=url, secret_key=SECRET, _env_file=None))  # type: ignore[call-arg]
    posted, runs = 0, 0
    with db.transaction() as session:  # connect first: the backend's start-up is not counted
        session.execute(text("SELECT 1"))
    before = _cpu_seconds(os.getpid(), database)
    t0 = time.monotonic()
    while True:
        with db.transaction() as session:
            done = earnings.post_submitted(session)
        if not done:
            break
        posted, runs = posted + done, runs + 1
    seconds = time.monotonic() - t0
    after = _cpu_seconds(os.getpid(), database)
    db.dispose()
    figures: dict[str, Any] = {"posted": posted, "runs": runs, "seconds": round(seconds, 2)}
    for name in ("server", "database"):
        spent = sum(after[name].values()) - sum(before[name].get(pid, 0.0) for pid in after[name])
        key = "process" if name == "server" else name
        figures[f"{key}_cpu_ms_per_submit"] = round(1000 * spent / posted, 3) if posted else None
    return figures


def raw_ceiling(
    conninfo: str, job_id: int, annotators: list[int], seconds: float
) -> dict[str, Any]:
    """The same claim and submit transactions as raw SQL from one connection per annotator."""
    done = [0] * len(annotators)
    stop = time.monotonic() + seconds

    def run(n: int, me: int) -> None:
        with psycopg.connect(conninfo) as conn:
            while time.monotonic() < stop:
                with conn.transaction():
                    row = conn.execute(RAW_CLAIM, {"job": job_id, "me": me}).fetchone()
                if row is None:
                    continue
                params = {
                    "a": row[0],
                    "t": row[1],
                    "job": job_id,
                    "me": me,
                    "v": '{"sentiment": "positive"}',
                }
                with conn.transaction():
                    for statement in RAW_SUBMIT:
                        conn.execute(statement, params)
                done[n] += 1

    threads = [threading.Thread(target=run, args=(n, me)) for n, me in enumerate(annotators)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "cycles": sum(done),
        "seconds": round(elapsed, 1),
        "cycles_per_s": round(sum(done) / elapsed),
    }


def wrk_load(
    base: str,
    tokens: list[str],
    seconds: float,
    think_ms: float = 0,
    server_pid: int | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """Drive the server with wrk (C, so the load generator is not the bottleneck on two cores):
    one thread and connection per annotator running bench/claim_submit.lua, each spending
    about `think_ms` on a task. Latency of next and submit is read from the server's own
    histogram (GET /metrics), counting only this run's requests. With `server_pid` and
    `database`, also the CPU the server process and the database's backends spent per cycle:
    unlike cycles/s, that barely moves when other work shares the machine."""
    before = _histograms(base)
    cpu_before = _cpu_seconds(server_pid, database)
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        f.write("\n".join(tokens) + "\n")
    out = subprocess.run(
        [
            "wrk",
            f"-t{len(tokens)}",
            f"-c{len(tokens)}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "claim_submit.lua"),
            base,
        ],
        env={
            **os.environ,
            "TESSERA_BENCH_TOKENS": f.name,
            "TESSERA_BENCH_THINK_MS": str(think_ms),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(f.name)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    figures: dict[str, Any] = json.loads(line[4:])
    figures["cycles_per_s"] = round(figures["cycles"] / figures["seconds"])
    cpu_after = _cpu_seconds(server_pid, database)
    if figures["cycles"]:
        for name in ("server", "database"):
            spent = sum(cpu_after[name].values()) - sum(
                cpu_before[name].get(pid, 0.0) for pid in cpu_after[name]
            )
            figures[f"{name}_cpu_ms_per_cycle"] = round(1000 * spent / figures["cycles"], 3)
    after = _histograms(base)
    for name in ("next", "submit"):
        buckets = [(bound, n - dict(before[name]).get(bound, 0.0)) for bound, n in after[name]]
        figures[f"{name}_p50_ms"] = _quantile(buckets, 0.50)
        figures[f"{name}_p99_ms"] = _quantile(buckets, 0.99)
        figures[f"{name}_share_within_50ms"] = (
            round(dict(buckets).get(0.05, 0) / buckets[-1][1], 4) if buckets else None
        )
    return figures


def _cpu_seconds(server_pid: int | None, database: str | None) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) so far of the server process and of every PostgreSQL
    backend connected to `database` (its process title names the database), by pid."""
    ticks = os.sysconf("SC_CLK_TCK")

    def used(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    backends: dict[int, float] = {}
    if database:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and f" {database} ".encode() in title:
                    backends[int(entry.name)] = used(int(entry.name))
    return {
        "server": {server_pid: used(server_pid)} if server_pid else {},
        "database": backends,
    }


def _histograms(base: str) -> dict[str, list[tuple[float, float]]]:
    metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    return {
        name: _buckets(metrics.text, route)
        for route, name in (
            ("/v1/assignments/next", "next"),
            ("/v1/assignments/{assignment_id}/submit", "submit"),
        )
    }


def _buckets(text: str, route: str) -> list[tuple[float, float]]:
    pattern = re.compile(
        r'tessera_http_request_duration_seconds_bucket\{le="([^"]+)",method="POST",'
        r'route="' + re.escape(route) + r'"\} ([0-9.e+]+)'
    )
    found = [
        (float("inf") if le == "+Inf" else float(le), float(n)) for le, n in pattern.findall(text)
    ]
    return sorted(found)


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound (ms) of the histogram bucket holding quantile q (server-side)."""
    if not buckets or not buckets[-1][1]:
        return None
    total = buckets[-1][1]
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return None if bound == float("inf") else round(bound * 1000, 1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pool", type=int, default=20, help="server's database pool size")
    parser.add_argument("--threads", type=int, default=20, help="server's request threads")
    args = parser.parse_args()

    name = f"tessera_bench_{uuid.uuid4().hex[:8]}"
    admin = PG_SERVER.replace("+psycopg", "") + "postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_SERVER + name
    conninfo = PG_SERVER.replace("+psycopg", "") + name
    server = None
    try:
        t0 = time.monotonic()
        world = setup(url, args.tasks, args.clients)
        setup_s = round(time.monotonic() - t0, 1)
        people = world["annotators"]
        raw = raw_ceiling(
            conninfo, world["job_id"], [p[0] for p in people[: args.clients]], args.seconds
        )

        port = free_port()
        env = {
            **os.environ,
            "TESSERA_DATABASE_URL": url,
            "TESSERA_SECRET_KEY": SECRET,
            "TESSERA_DB_POOL_SIZE": str(args.pool),
            "TESSERA_REQUEST_THREADS": str(args.threads),
            "TESSERA_LOG_LEVEL": "WARNING",
            "TESSERA_DEMO": "0",
            "TESSERA_METRICS_TOKEN": METRICS_TOKEN,
            # Background jobs (refits, refreshes, webhook ticks) run in worker processes in
            # production: with a broker set, this server runs none of them in-process, so the
            # figures are the annotators' calls alone. Nothing consumes the queue meanwhile.
            "TESSERA_BROKER_URL": BENCH_BROKER,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        tokens = [p[1] for p in people[args.clients :]]
        http = wrk_load(base, tokens, args.seconds, server_pid=server.pid, database=name)
        target = TARGET_SHARE * raw["cycles_per_s"]
        # The mean time on a task is the cycle time that offers the target, less a little for
        # the calls themselves; the run reports the rate it reached.
        paced = wrk_load(
            base,
            tokens,
            args.seconds,
            think_ms=950 * args.clients / target,
            server_pid=server.pid,
            database=name,
        )
        server.terminate()
        server.wait(10)
        server = None
        poster = post_earnings(url, name)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    ratio = http["cycles_per_s"] / raw["cycles_per_s"] if raw["cycles_per_s"] else 0.0
    print(
        f"{args.tasks:,} tasks (overlap 3), {args.clients} annotators, {args.seconds:.0f} s "
        f"each phase; setup {setup_s} s"
    )
    print(f"raw SQL (psycopg, {args.clients} connections): {raw['cycles_per_s']:,} cycles/s")
    for label, run in (("saturation", http), ("paced", paced)):
        print(
            f"HTTP {label} (uvicorn, 1 process; wrk, {args.clients} connections): "
            f"{run['cycles_per_s']:,} cycles/s = {run['cycles_per_s'] / raw['cycles_per_s']:.0%} "
            f"of raw; server-side next p50 <= {run['next_p50_ms']} ms, p99 <= "
            f"{run['next_p99_ms']} ms ({run['next_share_within_50ms']:.1%} within 50 ms); "
            f"submit p50 <= {run['submit_p50_ms']} ms, p99 <= {run['submit_p99_ms']} ms; "
            f"client-side p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms (both calls); "
            f"empty {run['empty']}, errors {run['errors']}; CPU per cycle: server "
            f"{run.get('server_cpu_ms_per_cycle')} ms, "
            f"database {run.get('database_cpu_ms_per_cycle')} ms"
        )
    print(
        f"earnings poster afterwards: {poster['posted']:,} submits in {poster['runs']} runs, "
        f"{poster['seconds']} s; CPU per submit: process {poster['process_cpu_ms_per_submit']} "
        f"ms, database {poster['database_cpu_ms_per_submit']} ms"
    )
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "clients": args.clients,
                "raw": raw,
                "http": http,
                "paced": paced,
                "poster": poster,
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
