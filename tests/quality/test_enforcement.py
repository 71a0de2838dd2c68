"""Rule actions: each records the rule, its thresholds and the numbers that triggered it (shown
to the annotator) with the evidence behind them (admins only); removals ban from the job, a
suspension is proposed after repeated removals and confirmed by an admin; an admin reverses any
of them. The check at submit and the batch take the same decisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import JobBan, QualityAction, RuleCounters
from app.quality import enforcement
from tests.jobs.factories import active_job
from tests.quality.factories import actions_of, do_tasks, refresh
from tests.support import Account, assert_problem


def set_rules(client: TestClient, owner: Account, job_id: int, **rules: Any) -> None:
    response = client.put(f"/v1/quality/jobs/{job_id}/rules", json=rules, headers=owner.headers)
    assert response.status_code == 200, response.text


def actions(db: Database) -> list[QualityAction]:
    with db.read_session() as session:
        return list(session.scalars(select(QualityAction).order_by(QualityAction.id)))


def eligibility(client: TestClient, who: Account, job_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/annotator/jobs/{job_id}/eligibility", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def check_submits(db: Database, settings: Settings, ids: list[int]) -> list[QualityAction]:
    """What the submit flow does after each submit: the rules' cheap check."""
    added = []
    for assignment_id in ids:
        with db.transaction() as session:
            added += enforcement.check_submit(session, settings, assignment_id, utcnow())
    return added


def test_a_removal_carries_its_evidence_bans_and_is_reversible_without_reimposing_it(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=12, gold=12, overlap={"min": 1})
    set_rules(client, client_account, job_id, removal_gold_accuracy=0.6, removal_min_gold_answers=4)
    # Every claim of a new annotator gets a control item here (ratio 0.5, one item per task).
    done = do_tasks(client, annotator, job_id, 3)  # 3 control answers: too few to judge
    assert refresh(db, settings, annotator) == []
    done += do_tasks(client, annotator, job_id, 1)  # the fourth control answer, wrong
    [removal] = actions_of(db, annotator)  # decided by that submit itself
    assert refresh(db, settings, annotator) == []  # and the batch agrees, adding nothing

    gold_ids = [t["id"] for t in done if t["gold"]]
    assert len(gold_ids) == 4
    assert (removal.rule.value, removal.kind.value, removal.status.value) == (
        "gold_accuracy",
        "removal",
        "open",
    )
    assert removal.thresholds == {"min_accuracy": 0.6, "after_gold_answers": 4}
    assert removal.numbers == {"gold_accuracy": 0.0, "gold_answers": 4}
    assert [g["assignment_id"] for g in removal.evidence["gold_answers"]] == gold_ids
    assert {g["score"] for g in removal.evidence["gold_answers"]} == {0.0}
    with db.read_session() as session:
        ban = session.get_one(JobBan, removal.ban_id)
    assert (ban.job_id, ban.annotator_id, ban.reason, ban.until) == (
        job_id,
        annotator.id,
        removal.reason,
        None,
    )
    verdict = eligibility(client, annotator, job_id)
    assert verdict["eligible"] is False
    assert removal.reason in verdict["reasons"][0]["detail"]

    # The annotator sees the reason, the thresholds and their own numbers, not the evidence.
    [seen] = client.get("/v1/annotator/quality/actions", headers=annotator.headers).json()["items"]
    assert (seen["reason"], seen["numbers"], seen["thresholds"]) == (
        removal.reason,
        removal.numbers,
        removal.thresholds,
    )
    assert "evidence" not in seen
    assert "ban_id" not in seen
    # Admins see it in the queue with the evidence.
    queue = client.get("/v1/admin/quality/actions?kind=removal", headers=admin.headers).json()
    assert [a["evidence"] for a in queue["items"]] == [removal.evidence]
    assert refresh(db, settings, annotator) == []  # in force: not again

    reversed_ = client.post(
        f"/v1/admin/quality/actions/{removal.id}/reverse",
        json={"note": "control items were ambiguous"},
        headers=admin.headers,
    )
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["status"] == "reversed"
    assert eligibility(client, annotator, job_id)["eligible"] is True
    assert refresh(db, settings, annotator) == []  # the same evidence does not remove again
    again = assert_problem(
        client.post(
            f"/v1/admin/quality/actions/{removal.id}/reverse",
            json={"note": "twice"},
            headers=admin.headers,
        ),
        409,
        "action-not-open",
    )
    assert again["current_status"] == "reversed"

    # Four new wrong control answers after the reversal are new evidence.
    more = do_tasks(client, annotator, job_id, 4)
    assert refresh(db, settings, annotator) == []  # the fourth one's submit removed them
    second = actions_of(db, annotator)[-1]
    assert second.numbers == {"gold_accuracy": 0.0, "gold_answers": 4}
    assert [g["assignment_id"] for g in second.evidence["gold_answers"]] == [
        t["id"] for t in more if t["gold"]
    ]
    assert second.evidence["window_after_answer_id"] == removal.evidence["last_answer_id"]


def test_a_ban_lifted_by_hand_reverses_its_removal(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=2, gold=2, overlap={"min": 1})
    set_rules(client, client_account, job_id, removal_min_gold_answers=1)
    do_tasks(client, annotator, job_id, 1)  # a control item, answered wrong
    assert refresh(db, settings, annotator) == []  # the submit removed them already
    [removal] = actions_of(db, annotator)
    lifted = client.delete(f"/v1/jobs/{job_id}/bans/{annotator.id}", headers=client_account.headers)
    assert lifted.status_code == 204
    assert refresh(db, settings, annotator) == []
    [after] = actions(db)
    assert (after.id, after.status.value, after.resolution) == (
        removal.id,
        "reversed",
        "The ban was lifted.",
    )
    assert after.resolved_by_id == client_account.id


def test_fast_submits_are_flagged_once_each_at_submit_or_in_batch(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=6, overlap={"min": 1})
    set_rules(client, client_account, job_id, speed_floor_seconds=10)
    fast = [t["id"] for t in do_tasks(client, annotator, job_id, 3, seconds=4)]
    slow = [t["id"] for t in do_tasks(client, annotator, job_id, 1, seconds=40)]
    at_submit = check_submits(db, settings, fast[:2] + slow)
    assert [a.assignment_id for a in at_submit] == fast[:2]
    assert check_submits(db, settings, fast[:2]) == []  # checked already: nothing more
    in_batch = refresh(db, settings, annotator)
    assert [a.assignment_id for a in in_batch] == fast[2:]  # only the one not checked yet
    assert refresh(db, settings, annotator) == []
    for flag in actions(db):
        assert (flag.rule.value, flag.kind.value) == ("fast_submit", "flag")
        assert flag.thresholds == {"floor_seconds": 10.0}
        assert flag.numbers["seconds"] == pytest.approx(4.0, abs=0.5)  # (real time runs too)
        assert flag.evidence == {"assignment_id": flag.assignment_id}
    listed = client.get(
        f"/v1/quality/jobs/{job_id}/assignments", headers=client_account.headers
    ).json()["items"]
    assert {a["id"]: a["flags"] for a in listed} == {
        **{i: ["fast_submit"] for i in fast},
        **{i: [] for i in slow},
    }


def test_the_speed_floor_defaults_to_a_share_of_the_jobs_median(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
    settings: Settings,
) -> None:
    """With no floor set, a quarter of the median seconds of the job's submits, once there are
    20: here 20 submits of 40 s give a floor of 10 s, and a 4 s submit is flagged."""
    job_id = active_job(client, client_account, items=30, overlap={"min": 1})
    steady, hasty = make_account("annotator"), make_account("annotator")
    do_tasks(client, steady, job_id, 19, seconds=40)
    [quick] = do_tasks(client, hasty, job_id, 1, seconds=4)
    [flag] = refresh(db, settings, steady, hasty)  # the floor is derived, then applied
    assert flag.assignment_id == quick["id"]
    assert flag.numbers["seconds"] == pytest.approx(4.0, abs=0.5)
    assert flag.thresholds["floor_seconds"] == pytest.approx(10.0, abs=0.1)
    rules_now = client.get(f"/v1/quality/jobs/{job_id}/rules", headers=client_account.headers)
    assert rules_now.json()["derived_floor_seconds"] == pytest.approx(10.0, abs=0.1)
    assert rules_now.json()["derived_from_submits"] == 20
    effective = rules_now.json()["effective"]["speed_floor_seconds"]
    assert effective == rules_now.json()["derived_floor_seconds"]
    assert refresh(db, settings, steady, hasty) == []


def test_identical_answer_runs_are_flagged_the_same_at_submit_and_in_batch(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=16, overlap={"min": 2})
    set_rules(client, client_account, job_id, identical_run_length=3)
    checked, batched = make_account("annotator"), make_account("annotator")

    def label(text: str) -> str:  # the same answers for both, runs of 3 and 4
        return "negative" if int(text.split()[-1]) in (3, 7) else "positive"

    first = [t["id"] for t in do_tasks(client, checked, job_id, 8, label=label)]
    do_tasks(client, batched, job_id, 8, label=label)
    at_submit = check_submits(db, settings, first)
    in_batch = refresh(db, settings, batched)
    # positive ×3 (flag), negative, positive ×3 (flag), negative
    assert [(a.rule.value, a.numbers) for a in at_submit] == [
        ("identical_answers", {"run_length": 3}),
        ("identical_answers", {"run_length": 3}),
    ]
    assert [(a.rule.value, a.numbers, a.thresholds) for a in in_batch] == [
        (a.rule.value, a.numbers, a.thresholds) for a in at_submit
    ]
    # The checked annotator's refresh finds the flags made at submit and adds none.
    assert refresh(db, settings, checked) == []
    with db.read_session() as session:
        counters = {c.annotator_id: c for c in session.scalars(select(RuleCounters))}
    assert counters[checked.id].run_key == counters[batched.id].run_key
    assert (counters[checked.id].run_length, counters[batched.id].run_length) == (1, 1)


def test_a_suspension_is_proposed_after_repeated_removals_and_an_admin_decides(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    db: Database,
    settings: Settings,
) -> None:
    jobs = []
    for _ in range(4):
        job_id = active_job(client, client_account, items=2, gold=2, overlap={"min": 1})
        set_rules(client, client_account, job_id, removal_min_gold_answers=1)
        jobs.append(job_id)
    for job_id in jobs[:3]:
        do_tasks(client, annotator, job_id, 1)  # each removal, and the proposal, at submit
    assert refresh(db, settings, annotator) == []
    added = actions_of(db, annotator)
    assert [a.kind.value for a in added] == ["removal"] * 3 + ["suspension_proposal"]
    proposal = added[-1]
    assert proposal.numbers == {"removals": 3}
    assert proposal.thresholds == {"max_removals": 3}
    assert sorted(proposal.evidence["removal_action_ids"]) == [a.id for a in added[:3]]
    assert client.get("/v1/annotator/quality", headers=annotator.headers).status_code == 200

    # Dismissed: not proposed again on the same removals; a fourth removal proposes again.
    client.post(
        f"/v1/admin/quality/actions/{proposal.id}/reverse",
        json={"note": "new annotator, give them time"},
        headers=admin.headers,
    )
    assert refresh(db, settings, annotator) == []
    do_tasks(client, annotator, jobs[3], 1)
    assert refresh(db, settings, annotator) == []
    added = actions_of(db, annotator)[-2:]
    assert [a.kind.value for a in added] == ["removal", "suspension_proposal"]
    confirmed = client.post(
        f"/v1/admin/quality/actions/{added[-1].id}/confirm",
        json={"note": "four jobs in a week"},
        headers=admin.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    body = assert_problem(
        client.get("/v1/annotator/quality", headers=annotator.headers), 403, "account-suspended"
    )
    assert body["reason"] == added[-1].reason
    assert_problem(
        client.post(
            f"/v1/admin/quality/actions/{added[-1].id}/confirm",
            json={"note": "again"},
            headers=admin.headers,
        ),
        409,
        "action-not-open",
    )
    client.post(
        f"/v1/admin/quality/actions/{added[-1].id}/reverse",
        json={"note": "appealed by email, reinstated"},
        headers=admin.headers,
    )
    assert client.get("/v1/annotator/quality", headers=annotator.headers).status_code == 200


def test_only_admins_work_the_queues(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    for who in (client_account, annotator):
        for method, path in [
            ("get", "/v1/admin/quality/actions"),
            ("post", "/v1/admin/quality/actions/1/confirm"),
            ("post", "/v1/admin/quality/actions/1/reverse"),
            ("get", "/v1/admin/appeals"),
            ("post", "/v1/admin/appeals/1/resolve"),
            ("get", f"/v1/admin/annotators/{annotator.id}/quality"),
            ("put", f"/v1/admin/annotators/{annotator.id}/reputation-override"),
            ("post", "/v1/admin/quality/refresh"),
        ]:
            assert_problem(client.request(method, path, json={}, headers=who.headers), 403)
