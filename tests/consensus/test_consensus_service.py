"""Consensus in the service, through the API on both databases: the job's method online after
each completing submit, dynamic overlap, and the background refit whose model the online
consensus then holds fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.consensus import service as consensus
from app.core.db import Database
from app.label_schema import LabelSchema
from app.models import Answer, ConsensusFit, ItemResult, Job, Task
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account


def answer_task(
    client: TestClient,
    make_account: Callable[..., Account],
    job_id: int,
    labels: list[str],
) -> None:
    """New annotators claim the job's next task and answer it, one label each."""
    for label in labels:
        person = make_account("annotator")
        [assignment] = claim(client, person, job_id=job_id)
        assert submit(client, person, assignment, label).status_code == 200


def tasks_of(db: Database, job_id: int) -> list[Task]:
    with db.read_session() as session:
        return list(session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.id)))


def results_of(db: Database, job_id: int) -> dict[int, ItemResult]:
    with db.read_session() as session:
        rows = session.scalars(select(ItemResult).where(ItemResult.job_id == job_id))
        return {r.item_id: r for r in rows}


def recomputed(db: Database, job_id: int) -> dict[int, tuple[dict[str, Any], float, int]]:
    """The consensus `consensus.decide` gives for the job's stored answers and fit (what the
    submit path must have written, whichever database it ran on)."""
    with db.read_session() as session:
        job = session.get_one(Job, job_id)
        votes = session.execute(
            select(Answer.item_id, Answer.annotator_id, Answer.value)
            .where(Answer.job_id == job_id)
            .order_by(Answer.id)
        ).all()
        fit = consensus.read_fit(session, job_id)
        schema = LabelSchema.model_validate(job.label_schema)
    _, results = consensus.decide(job, schema, [tuple(v) for v in votes], fit)
    return {r.item_id: (r.answer, r.confidence, r.answer_count) for r in results}


def test_a_completing_submit_records_the_jobs_method_and_what_decide_computes(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 3})
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["consensus_method"] == "calibrated_dawid_skene"  # the benchmark's choice
    answer_task(client, make_account, job_id, ["negative", "negative", "neutral"])
    answer_task(client, make_account, job_id, ["positive", "positive", "positive"])
    stored = results_of(db, job_id)
    assert {r.method for r in stored.values()} == {"calibrated_dawid_skene"}
    assert {k: (r.answer, r.confidence, r.answer_count) for k, r in stored.items()} == (
        recomputed(db, job_id)
    )
    split, unanimous = sorted(stored.values(), key=lambda r: r.confidence)
    assert split.answer == {"sentiment": "negative"}
    assert unanimous.answer == {"sentiment": "positive"}
    assert 0.5 < split.confidence < unanimous.confidence < 1.0


def test_dynamic_overlap_stops_a_confident_task_at_min_and_grows_a_split_one_to_max(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=2,
        overlap={"min": 2, "max": 4},
        confidence_threshold=0.9,
        consensus_method="majority_vote",  # vote shares: 1, 1/2, 2/3, 3/4
    )
    answer_task(client, make_account, job_id, ["positive", "positive"])
    confident, split = tasks_of(db, job_id)
    assert (confident.status.value, confident.overlap_target, confident.done_count) == (
        "complete",
        2,
        2,
    )
    answer_task(client, make_account, job_id, ["positive", "negative"])
    split = tasks_of(db, job_id)[1]
    assert (split.status.value, split.overlap_target, split.completed_at) == ("open", 3, None)
    assert len(results_of(db, job_id)) == 1  # no consensus for a task still open
    answer_task(client, make_account, job_id, ["negative"])  # 2 of 3: still below 0.9
    assert tasks_of(db, job_id)[1].overlap_target == 4
    answer_task(client, make_account, job_id, ["negative"])  # 3 of 4, and overlap.max reached
    split = tasks_of(db, job_id)[1]
    assert (split.status.value, split.overlap_target, split.done_count) == ("complete", 4, 4)
    result = results_of(db, job_id)
    assert sorted(
        (r.answer["sentiment"], r.confidence, r.answer_count) for r in result.values()
    ) == [
        ("negative", 0.75, 4),
        ("positive", 1.0, 2),
    ]
    assert claim(client, make_account("annotator"), job_id=job_id) == []


def test_a_refit_stores_a_new_model_version_that_the_online_consensus_then_uses(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=3, overlap={"min": 3})
    for labels in (["positive"] * 3, ["negative", "negative", "positive"]):
        answer_task(client, make_account, job_id, labels)
    assert client.get(f"/v1/jobs/{job_id}/consensus", headers=client_account.headers).json() == {
        "method": "calibrated_dawid_skene",
        "fit": None,
    }
    accepted = client.post(f"/v1/jobs/{job_id}/consensus/refit", headers=client_account.headers)
    assert accepted.status_code == 202
    assert accepted.headers["location"] == accepted.json()["status_url"]
    run_due_jobs(db, db.settings, prefix="quality.")
    run = client.get(accepted.json()["status_url"], headers=client_account.headers).json()
    assert run["state"] == "succeeded"
    assert run["result"]["version"] == 1
    assert run["result"]["answers"] == 6
    assert run["result"]["items"] == 2
    fit = client.get(f"/v1/jobs/{job_id}/consensus", headers=client_account.headers).json()["fit"]
    assert (fit["method"], fit["version"], fit["answers"], fit["items"]) == (
        "calibrated_dawid_skene",
        1,
        6,
        2,
    )
    # The last task completes online with the fitted model held fixed, as decide computes.
    answer_task(client, make_account, job_id, ["neutral", "neutral", "neutral"])
    with db.read_session() as session:
        assert session.get_one(ConsensusFit, job_id).version == 1
    stored = results_of(db, job_id)
    assert len(stored) == 3
    assert {k: (r.answer, r.confidence, r.answer_count) for k, r in stored.items()} == (
        recomputed(db, job_id)
    )
    # Completing the job refits once more: version 2, over every answer.
    assert client.post(f"/v1/jobs/{job_id}/complete", headers=client_account.headers).is_success
    run_due_jobs(db, db.settings, prefix="jobs.")
    with db.read_session() as session:
        final = session.get_one(ConsensusFit, job_id)
    assert (final.version, final.answers, final.items) == (2, 9, 3)


def test_changing_the_method_of_a_running_job_refits_it(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 3})
    answer_task(client, make_account, job_id, ["negative", "negative", "neutral"])
    changed = client.patch(
        f"/v1/jobs/{job_id}",
        json={"consensus_method": "majority_vote"},
        headers=client_account.headers,
    )
    assert changed.json()["consensus_method"] == "majority_vote"
    run_due_jobs(db, db.settings, prefix="quality.")
    [result] = results_of(db, job_id).values()
    assert (result.method, result.answer, result.confidence) == (
        "majority_vote",
        {"sentiment": "negative"},
        2 / 3,
    )


def test_an_unknown_method_is_a_422(client: TestClient, client_account: Account) -> None:
    from tests.jobs.factories import job_body

    response = client.post(
        "/v1/jobs",
        json=job_body(None, consensus_method="best_guess"),
        headers=client_account.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/consensus_method"
