"""Closing the market and measuring it: last reviews and appeals, a payout batch settled by hand
(the manual provider), then every figure of the report, read over the API and scored against the
simulation's truth."""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from collections import Counter, defaultdict
from typing import Any

from app.simulate.api import Api
from app.simulate.market import Log, Market
from app.simulate.population import Annotator, Kind
from app.simulate.server import FLOOR_MICROS_PER_HOUR, Receiver
from app.simulate.setup import Job, World

WEBHOOK_WAIT_SECONDS = 30.0
EXAMPLES = 5


def close_market(market: Market) -> float:
    """Review what is left, resolve the last appeals, pay everyone: the simulated time paid."""
    for client in market.clients:
        market.review_now(client, appeals=False)
    market.resolve_now()
    api, admin = market.api, market.admin
    market.clock.advance_to(market.clock.now + 60)
    api.post("/v1/admin/payouts/batches", admin)
    exported = api.call("GET", "/v1/admin/payouts/export", admin).text
    paid_at = market.clock.now
    for row in csv.DictReader(io.StringIO(exported)):
        api.post(
            f"/v1/admin/payouts/{row['payout_id']}/settle",
            admin,
            {"reference": f"sim-transfer-{row['payout_id']}"},
            route="/v1/admin/payouts/{id}/settle",
        )
    return paid_at


def measure(
    market: Market, paid_at: float, receiver: Receiver | None, seconds: float
) -> dict[str, Any]:
    api, log = market.api, market.log
    people = {p.index: p for p in market.people}
    removed = _removals(api, market.admin, market.people)
    report: dict[str, Any] = {
        "ended_by": log.ended_by,
        "simulated_seconds": round(market.clock.now, 1),
        "wall_seconds": round(seconds, 1),
        "jobs": [_job_figures(api, market.world, job) for job in market.jobs],
        "stalls": [
            {
                "job_id": s.job_id,
                "from": round(s.started_at),
                "to": None if s.ended_at is None else round(s.ended_at),
                "open_tasks": s.open_tasks,
                "idle_annotators": s.idle_annotators,
                "reasons": s.reasons,
            }
            for s in log.stalls
        ],
        "removals": _removal_figures(removed, market.people, log),
        "pay": _pay_figures(api, market.people, removed, log, paid_at),
        "ledger": api.get("/v1/admin/ledger/trial-balance", market.admin),
        "webhooks": _webhook_figures(api, market, receiver),
        "activity": {
            "claims": log.claims,
            "empty_next": log.empty_next,
            "heartbeats": log.heartbeats,
            "submits": len(log.submits),
            "abandoned_leases": log.abandoned,
            "refused_submits": log.refused_submits,
            "reviews": log.reviews,
            "appeals_filed": log.appeals_filed,
            "appeals": log.appeals,
            "api_calls": sum(api.calls.values()),
        },
        "population": dict(Counter(p.kind.value for p in people.values())),
        "progress": log.progress,
    }
    return report


def _job_figures(api: Api, world: World, job: Job) -> dict[str, Any]:
    lines = api.call(
        "GET", f"/v1/jobs/{job.job_id}/export", job.client.token, params={"format": "jsonl"},
        route="/v1/jobs/{id}/export",
    ).text.splitlines()  # fmt: skip
    consensus_right = majority_right = scored = 0
    worse: list[dict[str, Any]] = []  # items the consensus got wrong and majority vote right
    for line in lines:
        record = json.loads(line)
        ref = record["external_id"]
        if ref in world.gold_refs or not record["answers"]:
            continue
        truth = world.truth[ref]
        scored += 1
        majority = job.task.majority([a["answer"] for a in record["answers"]])
        consensus_ok = job.task.correct(record["consensus"], truth)
        majority_ok = job.task.correct(majority, truth)
        consensus_right += consensus_ok
        majority_right += majority_ok
        if majority_ok and not consensus_ok and len(worse) < EXAMPLES:
            worse.append(
                {
                    "external_id": ref,
                    "truth": truth,
                    "consensus": record["consensus"],
                    "confidence": record["confidence"],
                    "answers": [a["answer"] for a in record["answers"]],
                }
            )
    done = job.completed_at
    spend = api.get(f"/v1/jobs/{job.job_id}/spend", job.client.token, route="/v1/jobs/{id}/spend")
    return {
        "spend": spend,
        "job_id": job.job_id,
        "task_type": job.task.name,
        "items": job.items,
        "gold": job.gold,
        "tasks": job.total_tasks,
        "complete_tasks": job.complete_tasks,
        "completed": done is not None,
        "seconds_to_complete": None if done is None else round(done - job.activated_at),
        "items_scored": scored,
        "consensus_accuracy": consensus_right / scored if scored else None,
        "majority_accuracy": majority_right / scored if scored else None,
        "consensus_wrong_majority_right": worse,
    }


def _removals(api: Api, admin: str, people: list[Annotator]) -> dict[int, list[dict[str, Any]]]:
    """Removals in force per annotator user id."""
    actions = api.pages("/v1/admin/quality/actions", admin, kind="removal", status="open")
    actions += api.pages("/v1/admin/quality/actions", admin, kind="removal", status="confirmed")
    removed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for action in actions:
        removed[action["annotator_id"]].append(action)
    return removed


def _removal_figures(
    removed: dict[int, list[dict[str, Any]]], people: list[Annotator], log: Log
) -> dict[str, Any]:
    accepted_before: Counter[int] = Counter()
    for facts in log.submits.values():
        accepted_before[facts["annotator"]] += 1
    rows = []
    for person in people:
        if person.user_id in removed or person.kind.is_bad:
            rows.append(
                {
                    "annotator": person.label,
                    "kind": person.kind.value,
                    "removed_from_jobs": sorted(
                        a["job_id"] for a in removed.get(person.user_id, [])
                    ),
                    "answers_submitted": accepted_before[person.index],
                }
            )
    bad = [p for p in people if p.kind.is_bad]
    good = [p for p in people if p.kind.is_good]
    worked = {log.submits[a]["annotator"] for a in log.submits}
    return {
        "bad_total": len(bad),
        "bad_worked": sum(p.index in worked for p in bad),
        "bad_removed": sum(p.user_id in removed for p in bad),
        "bad_not_removed": [p.label for p in bad if p.index in worked and p.user_id not in removed],
        "good_removed": [p.label for p in good if p.user_id in removed],
        "drifters_removed": [
            p.label for p in people if p.kind is Kind.drifter and p.user_id in removed
        ],
        "rows": rows,
    }


def _pay_figures(
    api: Api,
    people: list[Annotator],
    removed: dict[int, list[dict[str, Any]]],
    log: Log,
    paid_at: float,
) -> dict[str, Any]:
    rows = []
    for person in people:
        earnings = api.get("/v1/earnings", person.token)
        paid_seconds = sum(j["paid_seconds"] for j in earnings["jobs"])
        earned = sum(j["earned_micros"] + j["topup_micros"] for j in earnings["jobs"])
        hourly = earned * 3600 // paid_seconds if paid_seconds else None
        waits = [
            paid_at - f["submitted_at"]
            for f in log.submits.values()
            if f["annotator"] == person.index
        ]
        rows.append(
            {
                "annotator": person.label,
                "kind": person.kind.value,
                "jobs": [
                    {
                        key: j[key]
                        for key in (
                            "job_id",
                            "approved_assignments",
                            "paid_seconds",
                            "earned_micros",
                            "topup_micros",
                            "effective_hourly_micros",
                        )
                    }
                    for j in earnings["jobs"]
                ],
                "approved_assignments": sum(j["approved_assignments"] for j in earnings["jobs"]),
                "paid_seconds": paid_seconds,
                "earned_micros": earned,
                "topup_micros": earnings["topup_micros"],
                "paid_micros": earnings["paid_micros"],
                "hourly_micros": hourly,
                "below_floor_jobs": [
                    j["job_id"]
                    for j in earnings["jobs"]
                    if j["effective_hourly_micros"] is not None
                    and j["effective_hourly_micros"] < FLOOR_MICROS_PER_HOUR
                ],
                "median_seconds_submit_to_paid": statistics.median(waits) if waits else None,
            }
        )
    return {"floor_micros_per_hour": FLOOR_MICROS_PER_HOUR, "annotators": rows}


def _webhook_figures(api: Api, market: Market, receiver: Receiver | None) -> dict[str, Any]:
    deliveries: list[dict[str, Any]] = []
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while True:
        deliveries = []
        for client in market.clients:
            deliveries += api.pages("/v1/webhooks/deliveries", client.token)
        if all(d["status"] != "pending" for d in deliveries) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    statuses = Counter(d["status"] for d in deliveries)
    by_type = Counter(d["event"]["type"] for d in deliveries)
    received = list(receiver.received) if receiver else []
    return {
        "deliveries": len(deliveries),
        "by_status": dict(statuses),
        "by_event_type": dict(by_type),
        "received": len(received),
        "received_distinct": len({r["id"] for r in received}),
        "bad_signatures": sum(not r["valid"] for r in received),
    }
