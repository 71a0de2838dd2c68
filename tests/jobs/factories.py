"""Job factories for every test: label schemas, job bodies, dataset rows, and jobs made through
the API (`create_job`, `draft_job` with its items uploaded, `active_job`)."""

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


PRICING = {"mode": "per_task", "rate_micros": 50_000}  # 0.05 a task

GOLD_LABEL = "neutral"  # the answer key of every control row `controls` makes


def job_body(schema: Any = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Sentiment of reviews",
        "instructions": "Pick the sentiment.",
        "label_schema": schema if schema is not None else SENTIMENT,
        "pricing": dict(PRICING),
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


def controls(count: int) -> list[dict[str, Any]]:
    """`count` control (gold) rows for the sentiment schema: texts "control 0", "control 1"...,
    each with the answer key GOLD_LABEL."""
    return [
        {"external_id": f"g{n}", "text": f"control {n}", "gold_answer": {"sentiment": GOLD_LABEL}}
        for n in range(count)
    ]


def draft_job(
    client: TestClient,
    owner: Account,
    rows: list[dict[str, Any]] | None = None,
    *,
    items: int | None = None,
    gold: int = 0,
    rate: int | None = None,
    **fields: Any,
) -> int:
    """A draft job of `owner`'s with its items uploaded (asserted 201); returns its id.

    The items are `rows` if given, else `reviews(items)` (3 by default), followed by `gold`
    control rows (`controls`); with gold, `gold_ratio` is 0.5 unless given (every other task a
    control task, at one item per task). `rate` is the per-task rate in micros; `pricing` is
    merged over the default pricing (per task, 0.05) rather than replacing it. Every other field
    goes to the job body as `create_job` takes it (`label_schema`, `overlap`, ...)."""
    if rows is not None and items is not None:
        raise TypeError("draft_job takes rows or items, not both")
    pricing = {**PRICING, **({} if rate is None else {"rate_micros": rate})}
    pricing.update(fields.pop("pricing", {}))
    if gold:
        fields.setdefault("gold_ratio", 0.5)
    job_id = create_job(client, owner, pricing=pricing, **fields)
    data = (rows if rows is not None else reviews(3 if items is None else items)) + controls(gold)
    response = upload(client, owner, job_id, jsonl(data))
    assert response.status_code == 201, response.text
    return job_id


def active_job(
    client: TestClient,
    owner: Account,
    rows: list[dict[str, Any]] | None = None,
    *,
    items: int | None = None,
    gold: int = 0,
    rate: int | None = None,
    **fields: Any,
) -> int:
    """A job of `owner`'s made as `draft_job` makes it, then activated (asserted 200)."""
    job_id = draft_job(client, owner, rows, items=items, gold=gold, rate=rate, **fields)
    response = client.post(f"/v1/jobs/{job_id}/activate", headers=owner.headers)
    assert response.status_code == 200, response.text
    return job_id
