"""Who may do what: authors, annotators, other clients."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from app.models import Role
from tests.jobs.factories import create_job, job_body
from tests.qualification_tests.factories import create_test, make_skill, qtest_body
from tests.support import Account, assert_problem


def test_annotators_cannot_create_tests_or_skills_or_grant(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    assert_problem(
        client.post("/v1/qualification-tests", json=qtest_body(), headers=annotator.headers), 403
    )
    assert_problem(
        client.post("/v1/admin/skills", json={"slug": "x", "name": "X"}, headers=annotator.headers),
        403,
    )
    assert_problem(
        client.post(
            f"/v1/admin/annotators/{annotator.id}/skills",
            json={"skill": "sentiment-en", "reason": "myself please"},
            headers=annotator.headers,
        ),
        403,
    )


def test_clients_only_see_their_own_private_tests(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    make_skill(client, admin)
    owner, other = make_account(Role.client), make_account(Role.client)
    private = create_test(client, owner)
    public = create_test(client, admin, title="Platform test")
    assert private["public"] is False
    assert public["public"] is True
    for path in ("", "/questions", "/stats", "/attempts"):
        assert_problem(
            client.get(f"/v1/qualification-tests/{private['id']}{path}", headers=other.headers), 404
        )
    assert_problem(
        client.patch(
            f"/v1/qualification-tests/{private['id']}",
            json={"title": "mine"},
            headers=other.headers,
        ),
        404,
    )
    assert client.get("/v1/qualification-tests", headers=other.headers).json() == []
    mine = client.get("/v1/qualification-tests", headers=owner.headers).json()
    assert [t["id"] for t in mine] == [private["id"]]
    everything = client.get("/v1/qualification-tests", headers=admin.headers).json()
    assert {t["id"] for t in everything} == {private["id"], public["id"]}


def test_only_the_jobs_client_or_an_admin_may_ban_from_it(
    client: TestClient, make_account: Callable[..., Account], annotator: Account
) -> None:
    owner, other = make_account(Role.client), make_account(Role.client)
    job_id = create_job(client, owner)
    body = {"annotator_id": annotator.id, "reason": "low quality"}
    assert_problem(client.post(f"/v1/jobs/{job_id}/bans", json=body, headers=other.headers), 404)
    assert_problem(
        client.post(f"/v1/jobs/{job_id}/bans", json=body, headers=annotator.headers), 403
    )
    assert (
        client.post(f"/v1/jobs/{job_id}/bans", json=body, headers=owner.headers).status_code == 201
    )
    not_annotator = {"annotator_id": other.id, "reason": "low quality"}
    assert_problem(
        client.post(f"/v1/jobs/{job_id}/bans", json=not_annotator, headers=owner.headers), 404
    )


def test_jobs_naming_unknown_skills_are_rejected_with_pointers(
    client: TestClient, admin: Account, client_account: Account
) -> None:
    make_skill(client, admin)
    body = job_body(
        required_skills=[{"skill": "sentiment-en", "level": 1}, {"skill": "klingon", "level": 1}]
    )
    created = client.post("/v1/jobs", json=body, headers=client_account.headers)
    errors = assert_problem(created, 422)["errors"]
    assert errors == [{"pointer": "#/required_skills/1/skill", "detail": "unknown skill 'klingon'"}]
    job_id = create_job(client, client_account)
    too_high = {"required_skills": [{"skill": "sentiment-en", "level": 4}]}
    updated = client.patch(f"/v1/jobs/{job_id}", json=too_high, headers=client_account.headers)
    assert assert_problem(updated, 422)["errors"][0]["pointer"] == "#/required_skills/0/level"


def test_answer_keys_are_validated_against_the_schema_and_payload(
    client: TestClient, admin: Account
) -> None:
    make_skill(client, admin)
    bad = qtest_body(
        bank=[
            {"payload": {"text": "a"}, "answer_key": {"sentiment": "ecstatic"}},
            {"payload": {}, "answer_key": {"sentiment": "positive"}},
        ]
    )
    errors = assert_problem(
        client.post("/v1/qualification-tests", json=bad, headers=admin.headers), 422
    )
    pointers = {e["pointer"] for e in errors["errors"]}
    assert "#/questions/0/answer_key/sentiment" in pointers
    assert "#/questions/1/payload/text" in pointers
    assert client.get("/v1/qualification-tests", headers=admin.headers).json() == []


def test_stats_show_pass_rate_and_per_question_difficulty(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    from tests.qualification_tests.factories import take

    make_skill(client, admin)
    test = create_test(client, admin)
    take(client, make_account(Role.annotator), test["id"], right=4)
    take(client, make_account(Role.annotator), test["id"], right=0)
    stats = client.get(f"/v1/qualification-tests/{test['id']}/stats", headers=admin.headers).json()
    assert (stats["graded"], stats["passed"], stats["pass_rate"]) == (2, 1, 0.5)
    assert stats["score_histogram"][0] == 1
    assert stats["score_histogram"][9] == 1
    assert all(q["share_correct"] == 0.5 for q in stats["questions"])
    history = client.get(f"/v1/qualification-tests/{test['id']}/attempts", headers=admin.headers)
    assert len(history.json()) == 2


def test_a_skill_slug_is_taken_once(client: TestClient, admin: Account) -> None:
    make_skill(client, admin, "ner-de")
    again = client.post(
        "/v1/admin/skills", json={"slug": "ner-de", "name": "Again"}, headers=admin.headers
    )
    body = assert_problem(again, 409, "skill-exists")
    assert body["errors"] == [{"pointer": "#/slug", "detail": "already exists"}]
