"""Small factories for qualification tests: skills, tests with known keys, a clock to move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.jobs.factories import SENTIMENT
from tests.support import Account

LABELS = ["positive", "negative", "neutral"]


def make_skill(
    client: TestClient, admin: Account, slug: str = "sentiment-en", **extra: Any
) -> None:
    body = {"slug": slug, "name": slug.title(), "max_level": 3, **extra}
    response = client.post("/v1/admin/skills", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text


def sentiment_questions(count: int, *, weights: list[float] | None = None) -> list[dict[str, Any]]:
    """Questions whose key is recoverable from the payload text (`KEYS`), so tests can answer
    right or wrong on purpose whatever order the questions are drawn in."""
    return [
        {
            "payload": {"text": f"question {n}"},
            "answer_key": {"sentiment": LABELS[n % 3]},
            "explanation": f"explained {n}",
            "weight": weights[n] if weights else 1.0,
        }
        for n in range(count)
    ]


def right_label(payload: dict[str, Any]) -> str:
    return LABELS[int(payload["text"].split()[-1]) % 3]


def wrong_label(payload: dict[str, Any]) -> str:
    return LABELS[(int(payload["text"].split()[-1]) + 1) % 3]


def qtest_body(
    skill: str = "sentiment-en",
    questions: int = 4,
    bank: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Sentiment basics",
        "instructions": "Pick the sentiment.",
        "label_schema": SENTIMENT,
        "skill": skill,
        "skill_level": 1,
        "questions_per_attempt": questions,
        "time_limit_seconds": 600,
        "passing_score": 0.75,
        "questions": bank if bank is not None else sentiment_questions(questions),
    }
    body.update(overrides)
    return body


def create_test(client: TestClient, author: Account, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/qualification-tests", json=qtest_body(**overrides), headers=author.headers
    )
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


def start(client: TestClient, annotator: Account, test_id: int) -> Any:
    return client.post(
        f"/v1/annotator/qualification-tests/{test_id}/attempts", headers=annotator.headers
    )


def answer(attempt: dict[str, Any], right: int) -> list[dict[str, Any]]:
    """Answers for an attempt: the first `right` questions right, the rest wrong."""
    return [
        {
            "question_id": q["question_id"],
            "answer": {
                "sentiment": right_label(q["payload"]) if i < right else wrong_label(q["payload"])
            },
        }
        for i, q in enumerate(attempt["questions"])
    ]


def submit(client: TestClient, annotator: Account, attempt_id: int, answers: list[Any]) -> Any:
    return client.post(
        f"/v1/annotator/attempts/{attempt_id}/submit",
        json={"answers": answers},
        headers=annotator.headers,
    )


def take(client: TestClient, annotator: Account, test_id: int, right: int) -> dict[str, Any]:
    started = start(client, annotator, test_id)
    assert started.status_code == 201, started.text
    attempt = started.json()
    result = submit(client, annotator, attempt["id"], answer(attempt, right))
    assert result.status_code == 200, result.text
    out: dict[str, Any] = result.json()
    return out


@dataclass
class Clock:
    """Time the qualification code reads (through app.core.clock.utcnow), moved by tests."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def install_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in (
        "qualification_tests.annotators",
        "qualification_tests.attempts",
        "qualification_tests.grants",
        "qualification_tests.question_bank",
        "qualification_tests.eligibility",
    ):
        monkeypatch.setattr(f"{module}.utcnow", clock)
    return clock
