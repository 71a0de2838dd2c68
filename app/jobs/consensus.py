"""Consensus per item. A plain majority vote lives here until the quality package plugs in a
better aggregator through the same `Aggregator` signature; controls a vote over whole values
cannot settle (time segments, pairwise preferences, rankings, taxonomies) are aggregated by
`app.label_schema.aggregation`, one call per control.

`decide` is the one function every path calls (the submit that completes a task, on either
database, and `refresh_item_results`), so the job's method is applied the same way everywhere."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.label_schema import LabelSchema
from app.label_schema.aggregation import aggregate_control
from app.models.jobs import Answer, ItemResult, Job

DEFAULT_METHOD = "majority_vote"

# (schema, answers of one item) -> (consensus answer, confidence in [0, 1])
Aggregator = Callable[[LabelSchema, Sequence[dict[str, Any]]], tuple[dict[str, Any], float]]


def majority_vote(
    schema: LabelSchema, answers: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any], float]:
    """Per control, the most frequent value (compared as canonical JSON; ties go to the value
    seen first), or `aggregate_control`'s consensus for the controls it aggregates; confidence is
    the mean of the per-control confidences (for a vote, the share of the winning value)."""
    consensus: dict[str, Any] = {}
    shares: list[float] = []
    for control in schema.controls:
        values = [a[control.name] for a in answers if control.name in a]
        if not values:
            continue
        aggregated = aggregate_control(control, values)
        if aggregated is not None:
            consensus[control.name], share = aggregated
            shares.append(share)
            continue
        counts = Counter(_canonical(v) for v in values)
        winner, votes = max(counts.items(), key=lambda kv: kv[1])  # first max wins ties
        consensus[control.name] = json.loads(winner)
        shares.append(votes / len(values))
    return consensus, (sum(shares) / len(shares) if shares else 0.0)


def _canonical(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = sorted(value)  # multi-choice: order does not matter
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Consensus:
    item_id: int
    answer: dict[str, Any]
    confidence: float
    answer_count: int


def decide(
    job: Job, schema: LabelSchema, answers: Iterable[tuple[int, Any]]
) -> tuple[str, list[Consensus]]:
    """The job's consensus method and the consensus of each item from its (item id, answer)
    pairs, in answer order."""
    return DEFAULT_METHOD, aggregate_items(schema, answers, majority_vote)


def write_results(
    session: Session, job_id: int, method: str, results: Sequence[Consensus], now: datetime
) -> None:
    """Insert or replace the consensus of each item."""
    if not results:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ItemResult)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ItemResult.item_id],
        set_={
            name: stmt.excluded[name]
            for name in ("answer", "confidence", "answer_count", "method", "updated_at")
        },
    )
    session.execute(
        stmt,
        [
            {
                "item_id": r.item_id,
                "job_id": job_id,
                "answer": r.answer,
                "confidence": r.confidence,
                "answer_count": r.answer_count,
                "method": method,
                "updated_at": now,
            }
            for r in results
        ],
    )


def refresh_item_results(
    session: Session, job: Job, schema: LabelSchema, item_ids: Sequence[int]
) -> int:
    """Recompute the consensus of the given items from their answers; return how many items
    now have one."""
    answers = session.execute(
        select(Answer.item_id, Answer.value).where(Answer.item_id.in_(item_ids)).order_by(Answer.id)
    ).all()
    method, results = decide(job, schema, [(item_id, value) for item_id, value in answers])
    write_results(session, job.id, method, results, utcnow())
    return len(results)


def aggregate_items(
    schema: LabelSchema, answers: Iterable[tuple[int, Any]], aggregator: Aggregator
) -> list[Consensus]:
    """The consensus of each item from its (item id, answer) pairs, in answer order."""
    by_item: dict[int, list[dict[str, Any]]] = {}
    for item_id, value in answers:
        by_item.setdefault(item_id, []).append(value)
    out = []
    for item_id, values in by_item.items():
        answer, confidence = aggregator(schema, values)
        out.append(Consensus(item_id, answer, confidence, len(values)))
    return out
