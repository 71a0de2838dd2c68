"""Taking a test: pass/fail at the threshold, deadlines, attempt limits, cooldowns, validation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.qualification_tests.factories import (
    Clock,
    answer,
    create_test,
    make_skill,
    sentiment_questions,
    start,
    submit,
    take,
)
from tests.support import Account, assert_problem


def test_score_exactly_at_the_passing_score_passes_and_grants_the_skill(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, passing_score=0.75, grant_valid_days=30)
    result = take(client, annotator, test["id"], right=3)
    assert result["score"] == 0.75
    assert result["passed"] is True
    assert result["skill_granted"]["skill"] == "sentiment-en"
    assert result["skill_granted"]["level"] == 1
    skills = client.get("/v1/annotator/skills", headers=annotator.headers).json()
    assert [s["skill"] for s in skills] == ["sentiment-en"]


def test_score_just_below_the_passing_score_fails_and_grants_nothing(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, passing_score=0.76)
    result = take(client, annotator, test["id"], right=3)
    assert result["score"] == 0.75
    assert result["passed"] is False
    assert result["skill_granted"] is None
    assert client.get("/v1/annotator/skills", headers=annotator.headers).json() == []


def test_the_score_is_the_weighted_mean_of_question_scores(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(
        client,
        admin,
        questions=2,
        questions_per_attempt=2,
        passing_score=0.5,
        bank=sentiment_questions(2, weights=[3.0, 1.0]),
    )
    started = start(client, annotator, test["id"]).json()
    heavy = next(q for q in started["questions"] if q["payload"]["text"] == "question 0")
    light = next(q for q in started["questions"] if q["payload"]["text"] == "question 1")
    answers = [
        {"question_id": heavy["question_id"], "answer": {"sentiment": "positive"}},  # right
        {"question_id": light["question_id"], "answer": {"sentiment": "positive"}},  # wrong
    ]
    result = submit(client, annotator, started["id"], answers).json()
    assert result["score"] == 0.75


def test_questions_are_drawn_without_repeats_from_the_bank(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, questions_per_attempt=5, bank=sentiment_questions(8))
    attempt = start(client, annotator, test["id"]).json()
    ids = [q["question_id"] for q in attempt["questions"]]
    assert len(ids) == 5 == len(set(ids))
    assert attempt["deadline"] > attempt["started_at"]


def test_a_second_start_returns_the_open_attempt(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin)
    first = start(client, annotator, test["id"])
    again = start(client, annotator, test["id"])
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["questions"] == first.json()["questions"]


def test_a_late_submission_scores_zero(
    client: TestClient, admin: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, time_limit_seconds=60)
    attempt = start(client, annotator, test["id"]).json()
    clock.advance(seconds=61)
    result = submit(client, annotator, attempt["id"], answer(attempt, right=4))
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["score"] == 0
    assert body["passed"] is False
    assert body["late"] is True
    assert client.get("/v1/annotator/skills", headers=annotator.headers).json() == []


def test_a_submission_just_before_the_deadline_counts(
    client: TestClient, admin: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, time_limit_seconds=60)
    attempt = start(client, annotator, test["id"]).json()
    clock.advance(seconds=59)
    body = submit(client, annotator, attempt["id"], answer(attempt, right=4)).json()
    assert body["score"] == 1.0
    assert body["passed"] is True


def test_an_abandoned_attempt_counts_as_failed_once_its_deadline_passes(
    client: TestClient, admin: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, time_limit_seconds=60, retake_cooldown_seconds=0)
    first = start(client, annotator, test["id"]).json()
    clock.advance(seconds=120)
    second = start(client, annotator, test["id"])
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]
    old = client.get(f"/v1/annotator/attempts/{first['id']}", headers=annotator.headers).json()
    assert (old["status"], old["score"], old["late"]) == ("graded", 0.0, True)


def test_the_cooldown_blocks_a_retake_until_it_ends(
    client: TestClient, admin: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, retake_cooldown_seconds=3600)
    take(client, annotator, test["id"], right=0)
    status = client.get(
        f"/v1/annotator/qualification-tests/{test['id']}", headers=annotator.headers
    ).json()
    assert status["state"] == "failed"
    assert status["can_start"] is False
    assert status["retake_after"] is not None
    body = assert_problem(start(client, annotator, test["id"]), 409, "retake-cooldown")
    assert body["state"] == "failed"
    assert body["retake_after"]
    clock.advance(seconds=3601)
    assert start(client, annotator, test["id"]).status_code == 201


def test_no_attempt_beyond_the_limit(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, max_attempts=2, retake_cooldown_seconds=0)
    take(client, annotator, test["id"], right=0)
    status = client.get("/v1/annotator/qualification-tests", headers=annotator.headers).json()
    assert status[0]["attempts_left"] == 1
    take(client, annotator, test["id"], right=1)
    status = client.get("/v1/annotator/qualification-tests", headers=annotator.headers).json()
    assert (status[0]["state"], status[0]["attempts_left"], status[0]["can_start"]) == (
        "exhausted",
        0,
        False,
    )
    body = assert_problem(start(client, annotator, test["id"]), 409, "attempt-limit-reached")
    assert body["attempts_left"] == 0


def test_a_pass_in_force_blocks_retakes_and_an_expired_one_allows_them(
    client: TestClient, admin: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, grant_valid_days=10)
    take(client, annotator, test["id"], right=4)
    listed = client.get("/v1/annotator/qualification-tests", headers=annotator.headers).json()
    assert listed[0]["state"] == "passed"
    assert listed[0]["passed_until"] is not None
    assert_problem(start(client, annotator, test["id"]), 409, "already-qualified")
    clock.advance(days=11)
    listed = client.get("/v1/annotator/qualification-tests", headers=annotator.headers).json()
    assert (listed[0]["state"], listed[0]["can_start"]) == ("expired", True)
    assert start(client, annotator, test["id"]).status_code == 201


def test_invalid_answers_are_all_reported_and_nothing_is_stored(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin)
    attempt = start(client, annotator, test["id"]).json()
    qids = [q["question_id"] for q in attempt["questions"]]
    answers = [
        {"question_id": qids[0], "answer": {"sentiment": "ecstatic"}},
        {"question_id": qids[1], "answer": {"mood": "positive"}},
        {"question_id": 999_999, "answer": {"sentiment": "positive"}},
    ]
    body = assert_problem(submit(client, annotator, attempt["id"], answers), 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert "#/answers/0/answer/sentiment" in pointers
    assert "#/answers/1/answer/mood" in pointers
    assert "#/answers/2/question_id" in pointers
    still = client.get(f"/v1/annotator/attempts/{attempt['id']}", headers=annotator.headers).json()
    assert still["status"] == "open"
    assert still["score"] is None
    # and a valid submission still goes through afterwards
    assert submit(client, annotator, attempt["id"], answer(attempt, 4)).json()["passed"] is True


def test_unanswered_questions_score_zero_and_a_graded_attempt_cannot_be_resubmitted(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, passing_score=0.5)
    attempt = start(client, annotator, test["id"]).json()
    result = submit(client, annotator, attempt["id"], answer(attempt, 4)[:2]).json()
    assert result["score"] == 0.5
    again = submit(client, annotator, attempt["id"], answer(attempt, 4))
    assert_problem(again, 409, "attempt-already-graded")


def test_feedback_shows_scores_and_explanations_only_when_the_test_allows(
    client: TestClient, admin: Account, annotator: Account, make_account: object
) -> None:
    make_skill(client, admin)
    quiet = create_test(client, admin)
    assert take(client, annotator, quiet["id"], right=2)["feedback"] is None
    chatty = create_test(client, admin, show_feedback=True, title="With feedback")
    result = take(client, annotator, chatty["id"], right=2)
    assert [f["correct"] for f in result["feedback"]] == [True, True, False, False]
    assert all(f["explanation"].startswith("explained") for f in result["feedback"])


def test_another_annotators_attempt_is_not_found(
    client: TestClient, admin: Account, annotator: Account, make_account: object
) -> None:
    from app.models import Role

    make_skill(client, admin)
    test = create_test(client, admin)
    attempt = start(client, annotator, test["id"]).json()
    other = make_account(Role.annotator)  # type: ignore[operator]
    assert_problem(
        client.get(f"/v1/annotator/attempts/{attempt['id']}", headers=other.headers), 404
    )
    assert_problem(submit(client, other, attempt["id"], answer(attempt, 4)), 404)


def test_a_skill_an_admin_revoked_blocks_retaking_its_test(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin)
    take(client, annotator, test["id"], right=4)
    [grant] = client.get(
        f"/v1/admin/annotators/{annotator.id}/skills", headers=admin.headers
    ).json()
    revoked = client.post(
        f"/v1/admin/skill-grants/{grant['id']}/revoke",
        json={"reason": "shared the answers"},
        headers=admin.headers,
    )
    assert revoked.status_code == 200, revoked.text
    body = assert_problem(start(client, annotator, test["id"]), 409, "skill-revoked")
    assert body["state"] == "revoked"


def test_a_test_whose_bank_is_too_small_cannot_be_started(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin, questions=3, bank=sentiment_questions(3))
    question = client.get(
        f"/v1/qualification-tests/{test['id']}/questions", headers=admin.headers
    ).json()[0]
    retired = client.delete(
        f"/v1/qualification-tests/{test['id']}/questions/{question['id']}", headers=admin.headers
    )
    assert retired.status_code == 200, retired.text
    assert_problem(start(client, annotator, test["id"]), 409, "not-enough-questions")
