"""A qualification test on the controls issue 16 added, from a Label Studio config: keys are
validated against the schema and attempts graded with the new graders."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.qualification_tests.factories import create_test, make_skill, start, submit
from tests.support import Account, assert_problem

PREFERENCE = """<View>
  <Text name="prompt" value="$prompt"/>
  <Text name="a" value="$a"/><Text name="b" value="$b"/>
  <Pairwise name="better" toName="a,b"/>
  <List name="responses" value="$candidates"/>
  <Ranker name="order" toName="responses"/>
  <Taxonomy name="issue" toName="prompt" required="true">
    <Choice value="Accuracy"><Choice value="Hallucination"/></Choice><Choice value="Style"/>
  </Taxonomy>
</View>"""

PAYLOAD = {
    "prompt": "Why is the sky blue?",
    "a": "Rayleigh scattering.",
    "b": "Because it reflects the sea.",
    "candidates": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
}
KEY = {"better": "left", "order": ["a", "c", "b"], "issue": [["Accuracy", "Hallucination"]]}


def test_a_preference_test_grades_agreement_kendall_tau_and_paths(
    client: TestClient, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin, slug="llm-feedback")
    bank = [{"payload": PAYLOAD, "answer_key": KEY}]
    test = create_test(
        client,
        admin,
        skill="llm-feedback",
        label_schema=PREFERENCE,
        questions=1,
        questions_per_attempt=1,
        passing_score=0.5,
        bank=bank,
        show_feedback=True,
    )
    attempt = start(client, annotator, test["id"]).json()
    [question] = attempt["questions"]
    answer: dict[str, Any] = {
        "better": "left",  # 1
        "order": ["c", "a", "b"],  # one of three pairs swapped: tau 1/3, score 2/3
        "issue": [["Accuracy"]],  # half the key's path: 1/2
    }
    result = submit(
        client,
        annotator,
        attempt["id"],
        [{"question_id": question["question_id"], "answer": answer}],
    ).json()
    assert abs(result["score"] - (1 + 2 / 3 + 1 / 2) / 3) < 1e-9
    assert result["passed"] is True


def test_a_key_that_does_not_fit_the_new_controls_is_refused(
    client: TestClient, admin: Account
) -> None:
    make_skill(client, admin, slug="llm-feedback")
    bank = [{"payload": PAYLOAD, "answer_key": {**KEY, "order": ["a", "b"]}}]
    response = client.post(
        "/v1/qualification-tests",
        json={
            "title": "Preferences",
            "label_schema": PREFERENCE,
            "skill": "llm-feedback",
            "skill_level": 1,
            "questions_per_attempt": 1,
            "time_limit_seconds": 600,
            "passing_score": 0.5,
            "questions": bank,
        },
        headers=admin.headers,
    )
    body = assert_problem(response, 422)
    assert any("missing: 'c'" in e["detail"] for e in body["errors"])
