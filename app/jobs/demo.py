"""Demo content for a new embedded database: a funded client, an annotator and a small job with
gold, so a newcomer sees the loop in a minute. Off with TESSERA_DEMO=0; never on PostgreSQL unless
TESSERA_DEMO=1."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.security import Principal
from app.jobs import dataset_files, importing, schemas, service, splitting
from app.models.accounts import Role
from payouts import funding

DEMO_BALANCE_MICROS = 100_000_000  # 100.00; the demo job commits a few units of it to escrow

REVIEWS = [
    ("The battery lasts all day and the screen is gorgeous.", "positive"),
    ("Stopped working after a week. Support never answered.", "negative"),
    ("It does what it says. Nothing more, nothing less.", "neutral"),
    ("Best purchase I have made this year!", "positive"),
    ("The strap broke on the first day.", "negative"),
    ("Arrived on time, packaging was fine.", "neutral"),
]
ADJECTIVES = ["great", "terrible", "okay", "fantastic", "awful", "average", "decent", "poor"]
NOUNS = ["camera", "keyboard", "kettle", "headphones", "backpack", "lamp"]


@dataclass(frozen=True)
class Demo:
    job_id: int
    client_token: str
    annotator_token: str


def create_demo(session: Session) -> Demo:
    """Create the demo accounts and an active sentiment job of 36 reviews, 6 of them gold."""
    client, client_token = accounts.create_account_with_token(
        session, email="client@example.com", display_name="Demo Client", role=Role.client
    )
    _, annotator_token = accounts.create_account_with_token(
        session, email="annotator@example.com", display_name="Demo Annotator", role=Role.annotator
    )
    body = schemas.JobCreate(
        title="Demo: sentiment of product reviews",
        instructions="Read the review and pick its overall sentiment.",
        label_schema={
            "controls": [
                {
                    "name": "sentiment",
                    "type": "choices",
                    "field": "text",
                    "labels": ["positive", "negative", "neutral"],
                }
            ]
        },
        pricing=schemas.Pricing(rate_micros=20_000),
        overlap=schemas.Overlap(min=3),
        gold_ratio=0.1,
    )
    funding.credit_manually(
        session, client.id, DEMO_BALANCE_MICROS, actor_id=None, reason="demo balance"
    )
    job = service.create_job(session, Principal(user=client, token_id=0), body)
    rows: list[dict[str, Any]] = [
        {
            "external_id": f"demo-{n}",
            "text": f"A {adj} {noun}. Would {'' if n % 2 else 'not '}buy again.",
        }
        for n, (adj, noun) in enumerate((a, b) for a in ADJECTIVES for b in NOUNS[:4])
    ][:30]
    rows += [
        {"external_id": f"gold-{n}", "text": text, "gold_answer": {"sentiment": label}}
        for n, (text, label) in enumerate(REVIEWS)
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    importing.import_dataset(
        session, job, service.job_schema(job), io.BytesIO(data), dataset_files.ImportFormat.jsonl
    )
    service.change_status(session, job, "activate")
    splitting.split_into_tasks(session, job)
    return Demo(job_id=job.id, client_token=client_token, annotator_token=annotator_token)
