"""Issue #22 finding 9: a deeply nested Label Studio config is a 422, never a 500.

990 nested `<View>`s (13 KB) once exhausted Python's stack in the reader (`RecursionError`, a
500) on job create, job patch and qualification test create.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.label_schema import parse_label_schema
from app.label_schema.label_studio.parse import MAX_DEPTH
from app.models import Job
from tests.jobs.factories import create_job, job_body
from tests.qualification_tests.factories import make_skill, qtest_body
from tests.support import Account, assert_problem

CONTROL = '<Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/></Choices>'


def nested(depth: int) -> str:
    return "<View>" * depth + CONTROL + "</View>" * depth


def assert_too_deep(response: object) -> None:
    body = assert_problem(response, 422)
    assert "nested too deeply" in body["detail"]
    assert body["errors"][0]["line"] == 1
    assert f"at most {MAX_DEPTH} deep" in body["errors"][0]["detail"]


def test_finding_9_the_depth_cap_still_reads_configs_nested_up_to_it() -> None:
    schema = parse_label_schema(nested(MAX_DEPTH - 2))  # <Choice> is the deepest element
    assert [c.name for c in schema.controls] == ["c"]


def test_finding_9_deep_label_studio_xml_is_a_422_on_job_create_and_patch(
    client: TestClient, client_account: Account, db: Database
) -> None:
    with db.session() as session:
        jobs = session.scalar(select(func.count()).select_from(Job))
    response = client.post("/v1/jobs", json=job_body(nested(990)), headers=client_account.headers)
    assert_too_deep(response)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == jobs
    job_id = create_job(client, client_account)
    before = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    patched = client.patch(
        f"/v1/jobs/{job_id}",
        json={"label_schema": nested(MAX_DEPTH + 1)},
        headers=client_account.headers,
    )
    assert_too_deep(patched)
    after = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert after["label_schema"] == before["label_schema"]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 990])
def test_finding_9_deep_label_studio_xml_is_a_422_on_qualification_tests(
    client: TestClient, admin: Account, depth: int
) -> None:
    make_skill(client, admin)
    body = qtest_body(label_schema=nested(depth))
    for question in body["questions"]:
        question["answer_key"] = {"c": "a"}
    response = client.post("/v1/qualification-tests", json=body, headers=admin.headers)
    assert_too_deep(response)
