"""Benchmark: import and export of N generated items, beside the raw database rate of the same
file in the same run.

    python bench/import_export.py --rows 1000000 --db postgresql sqlite

Each phase runs in a fresh subprocess so its peak RSS is its own. Prints a table and, last, one
JSON line with every figure. Targets (issue #5): import >= 40% of raw COPY, export >= 40% of raw
COPY TO on PostgreSQL; peak RSS <= 300 MB for either.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("TESSERA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/")
WORDS = [
    "the",
    "a",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "label",
    "data",
    "crowd",
    "review",
    "item",
    "good",
    "bad",
]
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


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w") as out:
        for n in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(14))
            row = {
                "external_id": f"item-{n}",
                "text": text,
                "source": "bench",
                "lang": "en",
                "score": round(rng.random(), 4),
            }
            out.write(json.dumps(row) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- phases (each runs in its own process) ------------------------------------------------------


def _database(url: str) -> Any:
    from app.core.db import Database
    from app.core.settings import Settings

    return Database(Settings(database_url=url, secret_key="b" * 40, _env_file=None))  # type: ignore[call-arg]


def phase_setup(url: str) -> dict[str, Any]:
    from app.accounts import service as accounts
    from app.core.security import Principal
    from app.jobs import schemas, service
    from migrations.schema import upgrade_to_head

    db = _database(url)
    upgrade_to_head(db.engine)
    with db.transaction() as session:
        user, _ = accounts.create_account_with_token(
            session,
            email=f"bench-{uuid.uuid4().hex[:6]}@example.com",
            display_name="bench",
            role=accounts.Role.client,
        )
        body = schemas.JobCreate(
            title="bench", label_schema=SCHEMA, pricing=schemas.Pricing(rate_micros=1000)
        )
        job = service.create_job(session, Principal(user=user, token_id=0), body)
        # The raw baseline writes the same file into the same table, as rows of its own job.
        raw_job = service.create_job(session, Principal(user=user, token_id=0), body)
        job_id, raw_job_id = job.id, raw_job.id
    return {"job_id": job_id, "raw_job_id": raw_job_id}


def phase_raw_import(url: str, path: str, job_id: int) -> dict[str, Any]:
    """The ceiling: each line parsed once (for its external id) and written as it is, with
    COPY or executemany, into `items`. No checks, no re-encoding."""
    import orjson

    db = _database(url)
    started = time.perf_counter()
    with db.transaction() as session, open(path, "rb") as lines:
        raw: Any = session.connection().connection.driver_connection
        rows = (
            (job_id, orjson.loads(line)["external_id"], line.rstrip(b"\n").decode(), False)
            for line in lines
        )
        columns = "job_id, external_id, payload, is_gold"
        if db.dialect == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY items ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            raw.executemany(f"INSERT INTO items ({columns}) VALUES (?, ?, ?, ?)", rows)
        count = raw.execute(f"SELECT count(*) FROM items WHERE job_id = {int(job_id)}").fetchone()[
            0
        ]
    return {"rows": count, "seconds": time.perf_counter() - started}


def phase_import(url: str, path: str, job_id: int) -> dict[str, Any]:
    from app.jobs import importing
    from app.jobs.service import job_schema
    from app.models.jobs import Job

    db = _database(url)
    started = time.perf_counter()
    with db.session() as session, open(path, "rb") as data:
        job = session.get_one(Job, job_id, with_for_update=True)
        result = importing.import_dataset(
            session, job, job_schema(job), data, importing.ImportFormat.jsonl
        )
        session.commit()
    return {"rows": result.created, "seconds": time.perf_counter() - started}


def phase_raw_export(url: str, job_id: int) -> dict[str, Any]:
    db = _database(url)
    started = time.perf_counter()
    size = rows = 0
    with db.read_session() as session:
        raw: Any = session.connection().connection.driver_connection
        if db.dialect == "postgresql":
            sql = (
                "COPY (SELECT payload FROM items WHERE job_id = %s ORDER BY id) TO STDOUT "
                "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
            )
            with raw.cursor() as cur, cur.copy(sql, (job_id,)) as copy:
                for block in copy:
                    size += len(block)
                    rows += bytes(block).count(b"\n")
        else:
            cur = raw.execute("SELECT payload FROM items WHERE job_id = ? ORDER BY id", (job_id,))
            while batch := cur.fetchmany(2000):
                size += len("\n".join(r[0] for r in batch)) + 1
                rows += len(batch)
    return {"rows": rows, "bytes": size, "seconds": time.perf_counter() - started}


def phase_export(url: str, job_id: int) -> dict[str, Any]:
    from app.jobs.export import export_jsonl

    db = _database(url)
    started = time.perf_counter()
    size = rows = 0
    for chunk in export_jsonl(db, job_id, client_id=1):
        size += len(chunk)
        rows += chunk.count(b"\n")
    return {"rows": rows, "bytes": size, "seconds": time.perf_counter() - started}


PHASES = {
    "setup": phase_setup,
    "raw_import": phase_raw_import,
    "import": phase_import,
    "raw_export": phase_raw_export,
    "export": phase_export,
}


def run_phase(name: str, *args: Any) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- driver -------------------------------------------------------------------------------------


def bench_database(kind: str, path: Path, workdir: Path) -> dict[str, Any]:
    created_pg = None
    if kind == "postgresql":
        import psycopg

        name = f"tessera_bench_{uuid.uuid4().hex[:8]}"
        admin = PG_SERVER.replace("+psycopg", "") + "postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created_pg = (admin, name)
        url = PG_SERVER + name
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    try:
        jobs = run_phase("setup", url)
        job_id, raw_job_id = jobs["job_id"], jobs["raw_job_id"]
        results = {
            "raw_import": run_phase("raw_import", url, path, raw_job_id),
            "import": run_phase("import", url, path, job_id),
            "raw_export": run_phase("raw_export", url, raw_job_id),
            "export": run_phase("export", url, job_id),
        }
    finally:
        if created_pg:
            import psycopg

            with psycopg.connect(created_pg[0], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{created_pg[1]}" WITH (FORCE)')
    for figures in results.values():
        figures["rows_per_s"] = round(figures["rows"] / figures["seconds"])
    results["import_ratio"] = round(
        results["import"]["rows_per_s"] / results["raw_import"]["rows_per_s"], 3
    )
    results["export_ratio"] = round(
        results["export"]["rows_per_s"] / results["raw_export"]["rows_per_s"], 3
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--db", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"]
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        converted = [int(a) if a.isdigit() else a for a in rest]
        figures = PHASES[name](*converted)
        figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "items.jsonl"
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        report: dict[str, Any] = {"rows": args.rows, "file_mb": round(size_mb, 1)}
        for kind in args.db:
            report[kind] = bench_database(kind, path, workdir)
    print(f"{args.rows:,} items, {report['file_mb']} MB JSONL")
    print(f"{'database':<11}{'phase':<12}{'rows/s':>10}{'seconds':>9}{'peak RSS MB':>13}")
    for kind in args.db:
        for phase in ("raw_import", "import", "raw_export", "export"):
            f = report[kind][phase]
            print(
                f"{kind:<11}{phase:<12}{f['rows_per_s']:>10,}{f['seconds']:>9.1f}"
                f"{f['peak_rss_mb']:>13}"
            )
        print(
            f"{kind:<11}import = {report[kind]['import_ratio']:.0%} of raw, "
            f"export = {report[kind]['export_ratio']:.0%} of raw"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
