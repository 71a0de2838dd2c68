"""No annotator-facing response, before or after an attempt, pass or fail, holds an answer key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.models import Role
from tests.jobs.factories import active_job
from tests.qualification_tests.factories import make_skill, start, submit
from tests.support import Account

SCHEMA = {
    "controls": [
        {"name": "sentiment", "type": "choices", "field": "text", "labels": ["pos", "neg"]},
        {"name": "note", "type": "text", "field": "text"},
    ]
}
KEY_MARK = "KEYLEAK"


def bank() -> list[dict[str, Any]]:
    return [
        {
            "payload": {"text": f"q{n}"},
            "answer_key": {"sentiment": "pos", "note": f"{KEY_MARK}{n:04d}XYZW"},
            "explanation": "read the whole review",
        }
        for n in range(6)
    ]


def test_no_annotator_response_contains_an_answer_key(
    client: TestClient,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    make_skill(client, admin)
    job_id = active_job(
        client, client_account, items=2, required_skills=[{"skill": "sentiment-en"}]
    )
    test_response = client.post(
        "/v1/qualification-tests",
        json={
            "title": "Keys stay secret",
            "label_schema": SCHEMA,
            "skill": "sentiment-en",
            "questions_per_attempt": 4,
            "passing_score": 0.5,
            "show_feedback": True,
            "questions": bank(),
        },
        headers=admin.headers,
    )
    assert test_response.status_code == 201, test_response.text
    test = test_response.json()
    seen: list[Any] = []

    def get(annotator: Account, path: str) -> None:
        response = client.get(path, headers=annotator.headers)
        assert response.status_code == 200, response.text
        seen.append(response.json())

    def drive(annotator: Account, sentiment: str) -> None:
        get(annotator, "/v1/annotator/qualification-tests")
        get(annotator, f"/v1/annotator/qualification-tests/{test['id']}")
        started = start(client, annotator, test["id"])
        seen.append(started.json())
        again = start(client, annotator, test["id"])
        seen.append(again.json())
        attempt = started.json()
        answers = [
            {"question_id": q["question_id"], "answer": {"sentiment": sentiment, "note": "no idea"}}
            for q in attempt["questions"]
        ]
        invalid = submit(client, annotator, attempt["id"], [{"question_id": 0, "answer": {}}])
        seen.append(invalid.json())
        result = submit(client, annotator, attempt["id"], answers)
        assert result.status_code == 200, result.text
        seen.append(result.json())
        seen.append(submit(client, annotator, attempt["id"], answers).json())  # 409
        get(annotator, f"/v1/annotator/attempts/{attempt['id']}")
        get(annotator, "/v1/annotator/attempts")
        get(annotator, "/v1/annotator/skills")
        get(annotator, "/v1/annotator/qualification-tests")
        get(annotator, "/v1/annotator/jobs")
        get(annotator, f"/v1/annotator/jobs/{job_id}/eligibility")
        get(annotator, "/v1/skills")
        for path in (
            f"/v1/qualification-tests/{test['id']}",
            f"/v1/qualification-tests/{test['id']}/questions",
            f"/v1/qualification-tests/{test['id']}/stats",
        ):
            denied = client.get(path, headers=annotator.headers)
            assert denied.status_code == 403
            seen.append(denied.json())

    passer, failer = make_account(Role.annotator), make_account(Role.annotator)
    drive(passer, "pos")
    drive(failer, "neg")
    assert any(s.get("passed") is True for s in seen if isinstance(s, dict))
    assert any(s.get("passed") is False for s in seen if isinstance(s, dict))
    text = json.dumps(seen)
    assert KEY_MARK not in text
    assert "answer_key" not in text
    # the authors' view does hold the keys, so the search would have found a leak
    keys = client.get(f"/v1/qualification-tests/{test['id']}/questions", headers=admin.headers)
    assert KEY_MARK in keys.text
