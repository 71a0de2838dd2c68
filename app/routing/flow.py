"""The annotator at work: claim, heartbeat, release and submit, each as one sequence of steps
over a `Store`. This is the only place those sequences are written; the decisions are `rules`'
and the SQL is the store's, so a step added here runs on PostgreSQL and SQLite alike.

Costs on PostgreSQL (measured with `bench/claim_submit.py`; see `postgresql`'s docstring): a
claim of one task is one statement outside any transaction, plus, in a job with gold, one more
when the annotator's gold rate says a gold item is due (`gold`; their gold record is cached); a
submit is one locking read and one write (plus the consensus upsert when it completes its task);
heartbeat and release are a locking read and one or two writes. Everything else comes from
`app.core.caches` while fresh.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from app.consensus import service as consensus
from app.core import caches
from app.core.errors import NotFound
from app.core.security import client_pseudonym
from app.core.settings import Settings
from app.jobs.service import job_schema
from app.models.jobs import AssignmentStatus, Job, TaskStatus
from app.routing import eligibility, gold, queue, rules, service
from app.routing.eligibility import JobsAndVerdicts
from app.routing.store import AnswerRow, AssignmentState, Claimed, Store, SubmitWrite
from app.webhooks import catalog
from app.webhooks.hot_path import PendingEvent
from payouts import pay_shown
from payouts.pricing import PayPreview


async def claim_next(
    store: Store,
    annotator_id: int,
    job_id: int | None,
    count: int,
    now: datetime,
    settings: Settings,
) -> tuple[list[Job], list[Claimed], list[queue.EmptyQueue], dict[int, PayPreview]]:
    """Claim up to `count` tasks the annotator is eligible for and has not worked on, each
    under a new lease, from the active jobs in serving order (or from `job_id` only: 404 when
    there is no such job, 403 with the reasons when the annotator may not work on it). Returns
    the jobs served; what was claimed (with the items' pre-labels for jobs that show them: one
    more read, only then); only when nothing was, why (`queue`), per job asked; and what each
    job claimed from pays the annotator (`payouts.pay_shown`: their tier from the verdicts, the
    job's pace from the cache; a query only when the pace is stale).

    Each claim statement is atomic on its own, so claiming one task needs no transaction; a
    larger count claims in one."""
    found = eligibility.cached_jobs_for(annotator_id, job_id, settings)
    if found is None:
        found = await store.read_jobs_for(annotator_id, job_id, now)
    jobs = eligibility.eligible_jobs(found, job_id)
    claimed: list[Claimed] = []
    async with store.transaction() if count > 1 else nullcontext():
        for job in jobs:
            wanted = count - len(claimed)
            if job.max_tasks_per_annotator is not None:
                used = await store.counted_assignments(annotator_id, job.id)
                wanted = min(wanted, job.max_tasks_per_annotator - used)
            if wanted <= 0:
                continue
            if caches.sweeps.due(job.id, now):
                await store.sweep_expired(job.id, now)
            got = await _claim_from_job(store, annotator_id, job, wanted, now)
            claimed.extend(await _add_gold(store, annotator_id, job, got, settings))
            if len(claimed) >= count:
                break
    if not claimed:
        return jobs, claimed, await store.explain_empty(annotator_id, job_id, now), {}
    showing = {job.id for job in jobs if job.show_prelabels}
    if showing:
        claimed = await _with_prelabels(store, claimed, showing)
    return jobs, claimed, [], await _pay(store, found, {c.job_id for c in claimed}, settings)


async def _with_prelabels(store: Store, claimed: list[Claimed], showing: set[int]) -> list[Claimed]:
    """The claimed tasks of jobs that show pre-labels, with them (read only for those)."""
    task_ids = [c.task_id for c in claimed if c.job_id in showing]
    shown: dict[int, dict[int, tuple[dict[str, Any], float | None]]] = {}
    for view in await store.read_prelabels(task_ids):
        if rules.shows_prelabel(view):
            shown.setdefault(view.task_id, {})[view.slot] = (view.prelabel, view.score)
    return [
        replace(c, prelabels=_at_shown_slots(shown[c.task_id], c.gold_slot))
        if c.task_id in shown
        else c
        for c in claimed
    ]


def _at_shown_slots(
    by_task_slot: dict[int, tuple[dict[str, Any], float | None]], gold_slot: int | None
) -> dict[int, tuple[dict[str, Any], float | None]]:
    """Pre-labels keyed by the slot their item is shown at: a gold item chosen at claim moves
    the task's items at and after its slot one further (`gold.shown_with_gold`)."""
    if gold_slot is None:
        return by_task_slot
    return {s + 1 if s >= gold_slot else s: v for s, v in by_task_slot.items()}


async def _pay(
    store: Store, found: JobsAndVerdicts, job_ids: set[int], settings: Settings
) -> dict[int, PayPreview]:
    if not job_ids:
        return {}
    medians, missing = pay_shown.cached_medians(job_ids, settings.pay_preview_cache_seconds)
    if missing:
        medians.update(await store.read_job_pace(missing))
    jobs, verdicts = found
    return {
        job.id: pay_shown.preview(job, verdicts[job.id].tier, medians[job.id], settings)
        for job in jobs
        if job.id in job_ids
    }


async def _claim_from_job(
    store: Store, annotator_id: int, job: Job, wanted: int, now: datetime
) -> list[Claimed]:
    lease_until = now + timedelta(seconds=job.lease_seconds)
    per_statement = rules.claims_per_statement(job.gold_ratio, wanted)
    claimed: list[Claimed] = []
    while len(claimed) < wanted:
        n = min(per_statement, wanted - len(claimed))
        got = await store.claim(annotator_id, job, n, now, lease_until)
        claimed.extend(got)
        if len(got) < n:
            break
    return claimed


async def _add_gold(
    store: Store, annotator_id: int, job: Job, got: list[Claimed], settings: Settings
) -> list[Claimed]:
    """Gold chosen at claim (`gold`): each claimed task split without gold gets an unseen gold
    item of the job at the annotator's rate; one statement more per assignment it is due for."""
    if job.gold_ratio <= 0 or all(c.has_gold for c in got):
        return got
    record = await _gold_record(store, annotator_id, job.id, settings)
    out: list[Claimed] = []
    for c in got:
        if c.has_gold or not gold.due(gold.rate(job.gold_ratio, len(c.items), record)):
            out.append(c)
            continue
        slot = gold.slot_for(len(c.items))
        payload = await store.add_gold(annotator_id, job.id, c.assignment_id, slot)
        out.append(
            c
            if payload is None
            else replace(c, items=gold.shown_with_gold(c.items, slot, payload), gold_slot=slot)
        )
    return out


async def _gold_record(
    store: Store, annotator_id: int, job_id: int, settings: Settings
) -> gold.GoldRecord:
    """The annotator's gold record in the job: cached (see `app.core.caches`), else read."""
    ttl = settings.routing_cache_seconds
    key = (annotator_id, job_id)
    hit: gold.GoldRecord | None = caches.gold_records.get(key, ttl)
    if hit is not None:
        return hit
    read_at = time.monotonic()
    record = await store.read_gold_record(annotator_id, job_id)
    caches.gold_records.put(key, record, read_at)
    return record


async def heartbeat(
    store: Store, annotator_id: int, assignment_id: int, now: datetime, settings: Settings
) -> rules.LeaseReport:
    """Extend a live lease by the job's lease time, never past claim time + lease × the
    platform's maximum lease factor; records active time. 409 `lease-ended` once the lease has
    run out."""
    async with store.transaction():
        a = await _own(store, annotator_id, assignment_id)
        job = await _job(store, a.job_id, settings)
        lease = rules.extended_lease(a, job.lease_seconds, now, settings)
        active = rules.active_seconds_at(a, now, settings)
        await store.record_heartbeat(a.id, lease, now, active)
    return rules.LeaseReport(
        a.id, a.status, lease, rules.lease_limit(a.claimed_at, job.lease_seconds, settings), active
    )


async def release(
    store: Store,
    annotator_id: int,
    assignment_id: int,
    reason: str | None,
    now: datetime,
    settings: Settings,
) -> rules.LeaseReport:
    """Give a live assignment back (skip); its slot returns to the pool. Releasing twice is a
    no-op; releasing a submitted or expired one is a 409."""
    async with store.transaction():
        a = await _own(store, annotator_id, assignment_id)
        job = await _job(store, a.job_id, settings)
        status = a.status
        if rules.check_releasable(a, now):
            await store.record_release(a, reason, now)
            status = AssignmentStatus.released
    return rules.LeaseReport(
        a.id,
        status,
        a.lease_expires_at,
        rules.lease_limit(a.claimed_at, job.lease_seconds, settings),
        a.active_seconds,
    )


async def submit(
    store: Store,
    annotator_id: int,
    assignment_id: int,
    answers: Sequence[Any],
    now: datetime,
    settings: Settings,
) -> rules.Submitted:
    """Submit the answers of an assignment, one per task item in slot order.

    Ownership (404), state and lease are checked: a live lease is fine; a lease that ran out
    is accepted within the grace period only while its slot has not been handed to someone
    else. Every answer is validated against the schema (422 listing every problem; nothing is
    stored). Gold items are graded at once. Submitting the same answers again returns the
    same result; different answers are a 409. The submit that completes a task records the
    consensus of its regular items (or, under dynamic overlap, asks for one more answer), and
    the client's webhook events are recorded in the same transaction. The earning is not: the
    poster (`payouts.earnings.post_submitted`) writes it to the ledger in batches, seconds later.
    Once a submit that completed a task has committed, the job's completion is queued when no
    task is left (`app.jobs.completion`).

    A submit with graded gold items then runs the quality rules on it (removal from the job
    below the gold accuracy threshold, with the fast-submit and identical-answers flags), once
    the submit has committed; every rule also runs in batch on each periodic refresh."""
    async with store.transaction():
        result = await _submit(store, annotator_id, assignment_id, answers, now, settings)
    if result.gold_scores and not result.replayed:
        await store.apply_submit_rules(result.assignment_id, now)
    if result.completed_task_of is not None:
        await store.queue_completion_if_done(result.completed_task_of, now)
    return result


async def _submit(
    store: Store,
    annotator_id: int,
    assignment_id: int,
    answers: Sequence[Any],
    now: datetime,
    settings: Settings,
) -> rules.Submitted:
    state = await store.lock_for_submit(assignment_id)
    if state is None or state.assignment.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    a, task, items = state.assignment, state.task, state.items
    job = await _job(store, a.job_id, settings)
    digest = rules.answers_digest(answers)
    if rules.check_resubmit(a, a.answers_hash, digest):
        assert a.submitted_at is not None
        gold_scores = await store.stored_gold_scores(a)
        return rules.Submitted(
            a.id,
            a.status,
            a.submitted_at,
            a.active_seconds,
            gold_scores,
            job.instant_feedback,
            replayed=True,
        )
    reclaims_slot = rules.check_lease(a, task, now, settings)

    schema = job_schema(job)
    rules.validate_answers(schema, items, answers)
    scores = rules.grade_gold(schema, items, answers)
    gold_scores = rules.gold_feedback(items, scores)
    active = rules.active_seconds_at(a, now, settings)
    slot = rules.slot_after_submit(task, reclaims_slot, now)
    complete = slot.status is TaskStatus.complete
    listening = await store.listening_types(job.client_id)
    gold_score = rules.mean_score(gold_scores)
    answered = await store.record_submit(
        SubmitWrite(
            assignment_id=a.id,
            job_id=job.id,
            client_id=job.client_id,
            task_id=a.task_id,
            annotator_id=annotator_id,
            now=now,
            answers=[
                AnswerRow(item.item_id, answer, score)
                for item, answer, score in zip(items, answers, scores, strict=True)
            ],
            active_seconds=active,
            answers_hash=digest,
            gold_score=gold_score,
            slot=slot,
            consensus_items=[i.item_id for i in items if not i.is_gold] if complete else [],
            events=[
                PendingEvent(
                    catalog.ASSIGNMENT_SUBMITTED,
                    catalog.assignment_submitted(
                        job.id,
                        a.task_id,
                        a.id,
                        client_pseudonym(
                            settings.resolved_secret_key(), job.client_id, annotator_id
                        ),
                        now,
                        active,
                        gold_score,
                        [
                            (item.item_id, item.external_id, answer)
                            for item, answer in zip(items, answers, strict=True)
                        ],
                    ),
                )
            ]
            if catalog.ASSIGNMENT_SUBMITTED in listening
            else [],
        )
    )
    if answered:
        fit = await _fit(store, job.id, settings)
        method, results = consensus.decide(job, schema, answered, fit)
        least = min(r.confidence for r in results)
        threshold, most = job.confidence_threshold, job.overlap_max
        if rules.grows_overlap(slot, task.overlap_target, least, threshold, most):
            await store.grow_overlap(a.task_id)
            return _submitted(a, job, now, active, gold_scores)
        events = []
        if catalog.TASK_COMPLETED in listening:
            external = {item.item_id: item.external_id for item in items}
            events.append(
                PendingEvent(
                    catalog.TASK_COMPLETED,
                    catalog.task_completed(
                        job.id,
                        a.task_id,
                        now,
                        [
                            (
                                r.item_id,
                                external[r.item_id],
                                r.answer,
                                r.confidence,
                                r.answer_count,
                            )
                            for r in results
                        ],
                    ),
                )
            )
        await store.record_consensus(job, method, results, now, events)

    return _submitted(a, job, now, active, gold_scores, completed=complete)


def _submitted(
    a: AssignmentState,
    job: Job,
    now: datetime,
    active: int,
    gold_scores: list[tuple[int, float]],
    *,
    completed: bool = False,
) -> rules.Submitted:
    return rules.Submitted(
        a.id,
        AssignmentStatus.submitted,
        now,
        active,
        gold_scores,
        job.instant_feedback,
        replayed=False,
        completed_task_of=job.id if completed else None,
    )


async def _own(store: Store, annotator_id: int, assignment_id: int) -> AssignmentState:
    """The annotator's assignment, locked; 404 for anyone else's (ids do not leak)."""
    a = await store.lock_assignment(assignment_id)
    if a is None or a.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    return a


async def _fit(store: Store, job_id: int, settings: Settings) -> consensus.Fit | None:
    """The job's fitted consensus model: cached (see `app.core.caches`), else read."""
    ttl = settings.consensus_fit_cache_seconds
    hit: tuple[consensus.Fit | None] | None = caches.consensus_fits.get(job_id, ttl)
    if hit is not None:
        return hit[0]
    read_at = time.monotonic()
    fit = await store.read_fit(job_id)
    caches.consensus_fits.put(job_id, (fit,), read_at)
    return fit


async def _job(store: Store, job_id: int, settings: Settings) -> Job:
    """The job of an assignment: from the active-job cache when it is there (its schema never
    changes once tasks exist), else read (a paused job still takes work in flight)."""
    for job in service.fresh_active_jobs(settings.routing_cache_seconds) or ():
        if job.id == job_id:
            return job
    return await store.read_job(job_id)
