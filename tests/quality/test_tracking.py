"""Accuracy and speed tracking: figures per annotator overall, per job and per skill, computed in
batch from real work, written to the stats table; reputation and tier written where eligibility
reads them, an admin's override taking precedence."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.background import enqueue
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import AnnotatorProfile, AnnotatorStats, Item, ItemResult, Tier
from app.quality import tracking
from tests.jobs.factories import GOLD_LABEL, active_job
from tests.outbox import run_due_jobs
from tests.quality.factories import do_tasks, refresh
from tests.support import Account


def stats(db: Database, who: Account) -> dict[tuple[str, str], AnnotatorStats]:
    with db.read_session() as session:
        rows = session.scalars(select(AnnotatorStats).where(AnnotatorStats.annotator_id == who.id))
        return {(r.scope.value, r.scope_key): r for r in rows}


@pytest.fixture
def crowd(
    client: TestClient,
    client_account: Account,
    admin: Account,
    make_account: Callable[..., Account],
) -> dict[str, Any]:
    """A job requiring a skill (4 regular items, 3 control tasks, overlap 3, floor 10 s) done by
    three annotators: X careful (gold right, 30 s a task), Y (gold wrong, 30 s), Z (the odd
    one out on every item, 5 s a task); X also does two tasks of a job without skills."""
    skill = client.post(
        "/v1/admin/skills",
        json={"slug": "sentiment-en", "name": "Sentiment"},
        headers=admin.headers,
    )
    assert skill.status_code == 201, skill.text
    x, y, z = (make_account("annotator") for _ in range(3))
    for who in (x, y, z):
        granted = client.post(
            f"/v1/admin/annotators/{who.id}/skills",
            json={"skill": "sentiment-en", "level": 1, "reason": "vetted"},
            headers=admin.headers,
        )
        assert granted.status_code == 201, granted.text
    job_id = active_job(
        client,
        client_account,
        items=7,
        gold=3,  # a control item in each of the first three claims (gold chosen at claim)
        overlap={"min": 3},
        required_skills=[{"skill": "sentiment-en"}],
    )
    rules = client.put(
        f"/v1/quality/jobs/{job_id}/rules",
        json={"speed_floor_seconds": 10},
        headers=client_account.headers,
    )
    assert rules.status_code == 200, rules.text
    other_job = active_job(client, client_account, items=2, overlap={"min": 1})
    done = {
        "x": do_tasks(client, x, job_id, 10, gold_label=GOLD_LABEL),
        "y": do_tasks(client, y, job_id, 10, gold_label="positive"),
        "z": do_tasks(client, z, job_id, 10, label="negative", gold_label=GOLD_LABEL, seconds=5),
        "x_other": do_tasks(client, x, other_job, 2),
    }
    return {"job": job_id, "other_job": other_job, "x": x, "y": y, "z": z, "done": done}


def test_figures_per_job_per_skill_and_overall(
    client: TestClient,
    client_account: Account,
    db: Database,
    settings: Settings,
    crowd: dict[str, Any],
) -> None:
    job, x, y, z, done = crowd["job"], crowd["x"], crowd["y"], crowd["z"], crowd["done"]
    assert [len(done[k]) for k in ("x", "y", "z")] == [7, 7, 7]  # 3 with a control item, 4 without
    x_regular = [t["id"] for t in done["x"] if not t["gold"]]
    client.post(
        f"/v1/quality/jobs/{job}/approve",
        json={"assignment_ids": x_regular[:2]},
        headers=client_account.headers,
    )
    client.post(
        f"/v1/quality/jobs/{job}/reject",
        json={"assignment_ids": x_regular[2:3], "reason": "too vague"},
        headers=client_account.headers,
    )
    refresh(db, settings, x, y, z)

    sx, sy, sz = stats(db, x), stats(db, y), stats(db, z)
    assert set(sx) == {
        ("overall", ""),
        ("job", str(job)),
        ("job", str(crowd["other_job"])),
        ("skill", "sentiment-en"),
    }
    on_job = sx[("job", str(job))]
    assert (on_job.tasks, on_job.gold_answers, on_job.gold_accuracy) == (7, 3, 1.0)
    # X sided with Y on each item, but the client rejected one of X's answers: that item's
    # consensus no longer counts it (answers that count: submitted or approved work), and Y
    # against Z is a tie (X's agreement is checked below, against the fitted consensus)
    assert on_job.consensus_answers == 7
    assert (on_job.approved, on_job.rejected, on_job.approval_rate) == (2, 1, pytest.approx(2 / 3))
    assert on_job.median_active_seconds == 30
    assert (on_job.timed_tasks, on_job.fast_submits, on_job.fast_share) == (7, 0, 0.0)
    # Positive on regular items, neutral on the control items of the first three claims (at
    # random slots): the four claims without one end in a run of 4, or 5 with the regular
    # answer before it.
    assert on_job.longest_identical_run in (4, 5)
    assert sx[("skill", "sentiment-en")].tasks == 7  # the job without skills is not in it
    overall = sx[("overall", "")]
    assert (overall.tasks, overall.gold_answers, overall.timed_tasks) == (9, 3, 7)

    y_job, z_job = sy[("job", str(job))], sz[("job", str(job))]
    # The consensus of each regular item, as fitted: Y (positive) and Z (negative) side with it
    # or not; the item whose X answer was rejected is a tie between them.
    with db.read_session() as session:
        results = list(
            session.execute(
                select(ItemResult.answer, ItemResult.confidence)
                .join(Item, Item.id == ItemResult.item_id)
                .where(ItemResult.job_id == job, Item.is_gold.is_(False))
            )
        )
    assert len(results) == 7
    positive = [c for answer, c in results if answer["sentiment"] == "positive"]
    negative = [c for answer, c in results if answer["sentiment"] != "positive"]
    assert on_job.agreement == pytest.approx(len(positive) / 7, abs=1e-6)  # X said positive
    assert len(positive) >= 6
    # Y answers positive to all 10 items (7 regular, 3 control).
    assert (y_job.gold_accuracy, y_job.longest_identical_run) == (0.0, 10)
    assert y_job.agreement == pytest.approx(len(positive) / 7, abs=1e-6)
    assert z_job.gold_accuracy == 1.0
    assert z_job.agreement == pytest.approx(len(negative) / 7, abs=1e-6)
    assert (z_job.median_active_seconds, z_job.fast_submits, z_job.fast_share) == (5, 7, 1.0)
    # Reputation follows the evidence (Beta prior of 10 neutral observations): X well above
    # neutral; Y, wrong on every control item though mostly with the majority, hardly above
    # it, (5 + 0·1 + 0.5·E_Y + 7·0.25) / (10 + 3·1 + 7·0.5 + 7·0.25); Z below,
    # (5 + 3 + 0.5·E_Z) / 18.25: an answer's agreement evidence is the consensus model's
    # probability that it is right, c (the consensus confidence) when it sides with the
    # consensus, 1 − c when not.
    evidence_y = sum(positive) + sum(1 - c for c in negative)
    evidence_z = sum(negative) + sum(1 - c for c in positive)
    assert overall.reputation > 0.6
    assert y_job.reputation == pytest.approx((6.75 + 0.5 * evidence_y) / 18.25, abs=1e-4)
    assert z_job.reputation == pytest.approx((8 + 0.5 * evidence_z) / 18.25, abs=1e-4)


def test_reputation_and_tier_reach_eligibility_and_an_override_wins(
    client: TestClient,
    client_account: Account,
    admin: Account,
    db: Database,
    settings: Settings,
    crowd: dict[str, Any],
) -> None:
    x, y = crowd["x"], crowd["y"]
    picky = active_job(client, client_account, items=1, min_reputation=0.6, overlap={"min": 1})

    def eligible(who: Account) -> bool:
        answer = client.get(f"/v1/annotator/jobs/{picky}/eligibility", headers=who.headers)
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["eligible"])

    assert not eligible(x)
    assert not eligible(y)
    refresh(db, settings, x, y)
    with db.read_session() as session:
        profiles = {p.user_id: p for p in session.scalars(select(AnnotatorProfile))}
    assert profiles[x.id].reputation > 0.6 > profiles[y.id].reputation
    assert eligible(x)
    assert not eligible(y)

    override = client.put(
        f"/v1/admin/annotators/{y.id}/reputation-override",
        json={"reputation": 0.9, "tier": "expert", "reason": "verified offline by the client"},
        headers=admin.headers,
    )
    assert override.status_code == 200, override.text
    assert (override.json()["reputation"], override.json()["tier"]) == (0.9, "expert")
    assert override.json()["computed_reputation"] < 0.6
    assert eligible(y)
    refresh(db, settings, y)  # the batch does not undo an override
    mine = client.get("/v1/annotator/quality", headers=y.headers).json()
    assert (mine["reputation"], mine["tier"]) == (0.9, "expert")
    assert mine["override"]["reason"] == "verified offline by the client"
    assert mine["next_tier"] is None

    cleared = client.delete(
        f"/v1/admin/annotators/{y.id}/reputation-override", headers=admin.headers
    )
    assert cleared.status_code == 204
    assert not eligible(y)
    evidence = client.get(f"/v1/admin/annotators/{y.id}/quality", headers=admin.headers).json()
    [kept] = evidence["overrides"]
    assert kept["cleared_by_id"] == admin.id
    assert kept["reason"] == "verified offline by the client"


def test_who_is_refreshed_and_when(
    client: TestClient,
    client_account: Account,
    db: Database,
    settings: Settings,
    crowd: dict[str, Any],
) -> None:
    x, y, z = crowd["x"], crowd["y"], crowd["z"]
    with db.read_session() as session:
        assert tracking.due_annotators(session, utcnow()) == sorted([x.id, y.id, z.id])
    # The scheduler's job refreshes them (the chain walks every due annotator).
    with db.transaction() as session:
        enqueue(session, "quality.refresh")
    assert run_due_jobs(db, settings, prefix="quality.") == ["quality.refresh"]
    assert stats(db, x)[("overall", "")].tasks == 9
    # X submitted within the minute before that refresh: work committing while a refresh runs
    # is not lost, so X is due once more; after that nobody is.
    with db.read_session() as session:
        assert tracking.due_annotators(session, utcnow()) == [x.id]
    clock.travel(timedelta(minutes=2))
    with db.transaction() as session:
        enqueue(session, "quality.refresh")
    run_due_jobs(db, settings, prefix="quality.")
    with db.read_session() as session:
        assert tracking.due_annotators(session, utcnow()) == []

    client.post(
        f"/v1/quality/jobs/{crowd['job']}/reject",
        json={"assignment_ids": [crowd["done"]["z"][0]["id"]], "reason": "against the guide"},
        headers=client_account.headers,
    )
    with db.read_session() as session:
        assert tracking.due_annotators(session, utcnow()) == [z.id]  # reviewed since
    clock.travel(timedelta(days=1, minutes=5))
    with db.read_session() as session:  # a day on, everyone is recomputed (decay moves on)
        assert tracking.due_annotators(session, utcnow()) == sorted([x.id, y.id, z.id])


def test_stats_refresh_on_demand_reports_on_a_run(
    client: TestClient, admin: Account, db: Database, settings: Settings, crowd: dict[str, Any]
) -> None:
    started = client.post("/v1/admin/quality/refresh", headers=admin.headers)
    assert started.status_code == 202, started.text
    assert run_due_jobs(db, settings, prefix="quality.") == ["quality.refresh_all"]
    run = client.get(started.json()["status_url"], headers=admin.headers).json()
    assert run["state"] == "succeeded"
    assert run["counters"]["annotators"] == 3
    one = client.post(
        f"/v1/admin/annotators/{crowd['z'].id}/quality/refresh", headers=admin.headers
    )
    assert one.status_code == 200
    assert {s["scope"] for s in one.json()["stats"]} == {"overall", "job", "skill"}


def test_a_new_annotator_starts_neutral_at_entry(client: TestClient, annotator: Account) -> None:
    mine = client.get("/v1/annotator/quality", headers=annotator.headers)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["reputation"], body["tier"], body["stats"], body["computed_reputation"]) == (
        0.5,
        Tier.entry.value,
        [],
        None,
    )
    assert body["next_tier"]["tier"] == "mid"
