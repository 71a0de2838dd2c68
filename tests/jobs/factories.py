"""Small factories for job tests: schemas, job bodies, datasets."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.support import Account

SENTIMENT = {
    "controls": [
        {
            "name": "sentiment",
            "type": "choices",
            "field": "text",
            "labels": ["positive", "negative", "neutral"],
        },
    ]
}

BOXES = {
    "controls": [
        {
            "name": "objects",
            "type": "boxes",
            "field": "image",
            "labels": ["car", "person"],
            "width_field": "width",
            "height_field": "height",
        },
    ]
}


def job_body(schema: Any = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Sentiment of reviews",
        "instructions": "Pick the sentiment.",
        "label_schema": schema if schema is not None else SENTIMENT,
        "pricing": {"mode": "per_task", "rate_micros": 50_000},
        "overlap": {"min": 3},
        "items_per_task": 1,
    }
    body.update(overrides)
    return body


def create_job(client: TestClient, owner: Account, schema: Any = None, **overrides: Any) -> int:
    response = client.post("/v1/jobs", json=job_body(schema, **overrides), headers=owner.headers)
    assert response.status_code == 201, response.text
    job_id: int = response.json()["id"]
    return job_id


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(
    client: TestClient,
    owner: Account,
    job_id: int,
    body: bytes,
    *,
    content_type: str = "application/x-ndjson",
    mode: str | None = None,
) -> Any:
    params = {"mode": mode} if mode else {}
    return client.post(
        f"/v1/jobs/{job_id}/items",
        content=body,
        params=params,
        headers={**owner.headers, "Content-Type": content_type},
    )


def reviews(count: int, *, start: int = 0, gold_every: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in range(start, start + count):
        row: dict[str, Any] = {"external_id": f"r{n}", "text": f"review number {n}"}
        if gold_every and n % gold_every == 0:
            row["gold_answer"] = {"sentiment": "positive"}
        rows.append(row)
    return rows
