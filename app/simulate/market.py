"""The simulated market's event loop: annotators claim, heartbeat, submit (or abandon) and appeal;
clients review by a rule and complete finished jobs; an admin resolves appeals; a monitor watches
progress for stalls. Events run one at a time in simulated-time order, so a seed fixes the run."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.simulate.api import Api, UnexpectedResponse
from app.simulate.population import DROPOUT_LEAVES_AFTER, Annotator
from app.simulate.server import SimClock
from app.simulate.setup import Client, Job, World

HEARTBEAT_EVERY = 50.0  # simulated seconds (the started service counts gaps up to 60 s)
IDLE_RETRY = (30.0, 90.0)
REVIEW_EVERY = 300.0
ADMIN_EVERY = 600.0
MONITOR_EVERY = 60.0
STALL_AFTER = 600.0  # no task completed for this long, while annotators idle: a stall
GIVE_UP_AFTER = 3600.0  # no task completed anywhere for this long: the run ends
REJECT_BELOW = 0.5  # clients reject work whose control items score below this
APPEAL_SHARE = {True: 0.7, False: 0.3}  # honest kinds appeal more often than the rest


@dataclass
class Work:
    assignment_id: int
    job_id: int
    claimed_at: float
    submit_at: float
    answers: list[dict[str, Any]]
    refs: list[str]
    next_heartbeat: float
    abandon: bool


@dataclass
class Stall:
    job_id: int
    started_at: float
    open_tasks: int
    idle_annotators: int
    reasons: list[dict[str, Any]]
    ended_at: float | None = None


@dataclass
class Log:
    """What happened, for the report."""

    submits: dict[int, dict[str, Any]] = field(default_factory=dict)  # assignment id -> facts
    empty_next: int = 0
    claims: int = 0
    heartbeats: int = 0
    abandoned: int = 0
    refused_submits: list[str] = field(default_factory=list)
    reviews: dict[str, int] = field(default_factory=lambda: {"approved": 0, "rejected": 0})
    appeals_filed: int = 0
    appeals: dict[str, int] = field(default_factory=lambda: {"upheld": 0, "overturned": 0})
    stalls: list[Stall] = field(default_factory=list)
    progress: list[tuple[float, int, int]] = field(default_factory=list)  # t, job, complete
    ended_by: str = "every job completed"


class Market:
    def __init__(
        self,
        api: Api,
        clock: SimClock,
        rng: random.Random,
        world: World,
        admin: str,
        clients: list[Client],
        jobs: list[Job],
        people: list[Annotator],
        tick: Callable[[int], None] | None = None,
    ) -> None:
        self.api, self.clock, self.rng, self.world = api, clock, rng, world
        self.admin, self.clients, self.jobs, self.people = admin, clients, jobs, people
        self.by_job_id = {job.job_id: job for job in jobs}
        self.owner: dict[int, Annotator] = {}  # assignment id -> annotator
        self.work: dict[int, Work] = {}  # annotator index -> the task in hand
        self.log = Log()
        self.tick = tick
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.finished = False
        self.last_move = 0.0

    # --- the loop --------------------------------------------------------------------------

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (t, next(self.order), action))

    def run(self) -> Log:
        for person in self.people:
            self.at(self.rng.uniform(0, 30), lambda p=person: self.step(p))  # type: ignore[misc]
        for client in self.clients:
            self.at(REVIEW_EVERY, lambda c=client: self.review(c))  # type: ignore[misc]
        self.at(ADMIN_EVERY, self.resolve_appeals)
        self.at(MONITOR_EVERY, self.monitor)
        while self.queue and not self.finished:
            t, _, action = heapq.heappop(self.queue)
            self.clock.advance_to(t)
            action()
        return self.log

    # --- annotators ------------------------------------------------------------------------

    def step(self, person: Annotator) -> None:
        if self.finished or person.gone:
            return
        work = self.work.get(person.index)
        if work is None:
            self.claim(person)
        elif work.abandon:
            del self.work[person.index]  # walked away: the lease runs out on its own
            self.log.abandoned += 1
            person.abandoned += 1
            person.gone = person.abandoned >= DROPOUT_LEAVES_AFTER
            self.at(self.clock.now + self.rng.uniform(*IDLE_RETRY), lambda: self.step(person))
        elif work.next_heartbeat < work.submit_at:
            self.api.post(
                f"/v1/assignments/{work.assignment_id}/heartbeat",
                person.token,
                route="/v1/assignments/{id}/heartbeat",
            )
            self.log.heartbeats += 1
            work.next_heartbeat += HEARTBEAT_EVERY
            self.at(min(work.next_heartbeat, work.submit_at), lambda: self.step(person))
        else:
            self.submit(person, work)

    def claim(self, person: Annotator) -> None:
        found = self.api.post("/v1/assignments/next", person.token, {"count": 1})
        if not found["assignments"]:
            self.log.empty_next += 1
            person.last_next = found
            if person.idle_since is None:
                person.idle_since = self.clock.now
            self.at(self.clock.now + self.rng.uniform(*IDLE_RETRY), lambda: self.step(person))
            return
        person.idle_since = None
        self.log.claims += 1
        assignment = found["assignments"][0]
        refs = [item["data"]["ref"] for item in assignment["items"]]
        answers = [
            person.answer(
                self.rng, self.world.task_of_ref[ref], item["data"], self.world.truth[ref]
            )
            for ref, item in zip(refs, assignment["items"], strict=True)
        ]
        now = self.clock.now
        duration = person.work_seconds(self.rng, len(refs))
        work = Work(
            assignment_id=assignment["id"],
            job_id=assignment["job"]["id"],
            claimed_at=now,
            submit_at=now + duration,
            answers=answers,
            refs=refs,
            next_heartbeat=now + HEARTBEAT_EVERY,
            abandon=person.abandons(self.rng),
        )
        self.work[person.index] = work
        self.owner[work.assignment_id] = person
        self.at(min(work.next_heartbeat, work.submit_at), lambda: self.step(person))

    def submit(self, person: Annotator, work: Work) -> None:
        del self.work[person.index]
        try:
            result = self.api.post(
                f"/v1/assignments/{work.assignment_id}/submit",
                person.token,
                {"answers": work.answers},
                route="/v1/assignments/{id}/submit",
            )
        except UnexpectedResponse as exc:
            if exc.status not in (403, 409):
                raise
            self.log.refused_submits.append(f"{person.label}: {exc.status} {exc.body[:200]}")
        else:
            person.tasks_done += 1
            self.log.submits[work.assignment_id] = {
                "annotator": person.index,
                "job_id": work.job_id,
                "submitted_at": self.clock.now,
                "active_seconds": result["active_seconds"],
                "work_seconds": work.submit_at - work.claimed_at,
                "refs": work.refs,
            }
        self.at(self.clock.now + self.rng.uniform(1, 5), lambda: self.step(person))

    def appeal(self, person: Annotator, assignment_id: int) -> None:
        self.api.post(
            "/v1/annotator/appeals",
            person.token,
            {
                "assignment_id": assignment_id,
                "kind": "rejection",
                "message": "I labelled these carefully; please look again.",
            },
        )
        self.log.appeals_filed += 1

    # --- clients and admins ----------------------------------------------------------------

    def review(self, client: Client) -> None:
        """Approve submitted work unless its control items score below `REJECT_BELOW`; the
        annotators of some rejections appeal."""
        self.review_now(client)
        if not self.finished:
            self.at(self.clock.now + REVIEW_EVERY, lambda: self.review(client))

    def review_now(self, client: Client, appeals: bool = True) -> None:
        for job in self.jobs:
            if job.client is not client:
                continue
            path = f"/v1/quality/jobs/{job.job_id}/assignments"
            waiting = self.api.pages(path, client.token, status="submitted")
            approve = [a["id"] for a in waiting if not _fails(a)]
            reject = [a["id"] for a in waiting if _fails(a)]
            for ids in _chunks(approve, 500):
                self.api.post(
                    f"/v1/quality/jobs/{job.job_id}/approve",
                    client.token,
                    {"assignment_ids": ids},
                    route="/v1/quality/jobs/{id}/approve",
                )
                self.log.reviews["approved"] += len(ids)
            for ids in _chunks(reject, 500):
                self.api.post(
                    f"/v1/quality/jobs/{job.job_id}/reject",
                    client.token,
                    {"assignment_ids": ids, "reason": "Control items answered wrongly"},
                    route="/v1/quality/jobs/{id}/reject",
                )
                self.log.reviews["rejected"] += len(ids)
            for assignment_id in reject if appeals else []:
                person = self.owner[assignment_id]
                if self.rng.random() < APPEAL_SHARE[person.kind.is_good]:
                    self._appeal_later(person, assignment_id)

    def _appeal_later(self, person: Annotator, assignment_id: int) -> None:
        later = self.clock.now + self.rng.uniform(60, 600)
        self.at(later, lambda: self.appeal(person, assignment_id))

    def resolve_appeals(self) -> None:
        self.resolve_now()
        if not self.finished:
            self.at(self.clock.now + ADMIN_EVERY, self.resolve_appeals)

    def resolve_now(self) -> None:
        """Overturn a rejection unless the annotator has since been removed from the job."""
        for appeal in self.api.pages("/v1/admin/appeals", self.admin, status="open"):
            bans = self.api.get(f"/v1/jobs/{appeal['job_id']}/bans", self.admin,
                                route="/v1/jobs/{id}/bans")  # fmt: skip
            removed = any(
                b["annotator_id"] == appeal["annotator_id"] and b["lifted_at"] is None for b in bans
            )
            outcome = "upheld" if removed else "overturned"
            self.api.post(
                f"/v1/admin/appeals/{appeal['id']}/resolve",
                self.admin,
                {"outcome": outcome, "note": f"{outcome} by the simulation's admin rule"},
                route="/v1/admin/appeals/{id}/resolve",
            )
            self.log.appeals[outcome] += 1

    # --- progress and stalls ---------------------------------------------------------------

    def monitor(self) -> None:
        now = self.clock.now
        done_tasks = 0
        for job in self.jobs:
            if job.completed_at is not None:
                done_tasks += job.total_tasks
                continue
            progress = self.api.get(f"/v1/jobs/{job.job_id}/progress", job.client.token,
                                    route="/v1/jobs/{id}/progress")  # fmt: skip
            tasks = progress["tasks"]
            job.total_tasks = sum(tasks.values()) - tasks.get("cancelled", 0)
            if tasks["complete"] != job.complete_tasks:
                job.complete_tasks, job.progress_at, self.last_move = tasks["complete"], now, now
                self.log.progress.append((now, job.job_id, job.complete_tasks))
                self._end_stall(job, now)
            done_tasks += job.complete_tasks
            if job.total_tasks and job.complete_tasks == job.total_tasks and self._close(job):
                job.completed_at = now
                continue
            self._watch_stall(job, now, tasks)
        if self.tick is not None:
            self.tick(done_tasks)
        if all(job.completed_at is not None for job in self.jobs):
            self.finished = True
        elif now - self.last_move > GIVE_UP_AFTER:
            self.finished = True
            self.log.ended_by = f"nothing completed for {GIVE_UP_AFTER:.0f} s of simulated time"
        else:
            self.at(now + MONITOR_EVERY, self.monitor)

    def _close(self, job: Job) -> bool:
        """Review the job's last work; complete it unless a rejection reopened a task (the
        annotators then redo it first)."""
        self.review_now(job.client, appeals=False)
        progress = self.api.get(f"/v1/jobs/{job.job_id}/progress", job.client.token,
                                route="/v1/jobs/{id}/progress")  # fmt: skip
        tasks = progress["tasks"]
        job.complete_tasks = tasks["complete"]
        if tasks["complete"] != sum(tasks.values()) - tasks.get("cancelled", 0):
            return False
        if progress["status"] == "completed":  # it completed itself with its last task
            return True
        self.api.post(f"/v1/jobs/{job.job_id}/complete", job.client.token,
                      route="/v1/jobs/{id}/complete")  # fmt: skip
        return True

    def _idle(self, now: float) -> list[Annotator]:
        return [
            p
            for p in self.people
            if not p.gone and p.idle_since is not None and p.index not in self.work
        ]

    def _watch_stall(self, job: Job, now: float, tasks: dict[str, int]) -> None:
        open_stall = next(
            (s for s in self.log.stalls if s.job_id == job.job_id and s.ended_at is None), None
        )
        idle = self._idle(now)
        if open_stall or now - job.progress_at < STALL_AFTER or not idle or not tasks["open"]:
            return
        reasons: list[dict[str, Any]] = []
        for person in idle:
            verdict = self.api.get(
                f"/v1/annotator/jobs/{job.job_id}/eligibility",
                person.token,
                route="/v1/annotator/jobs/{id}/eligibility",
            )
            if verdict["eligible"] or reasons:
                reasons.append(
                    {
                        "annotator": person.label,
                        "eligible": verdict["eligible"],
                        "reasons": verdict["reasons"],
                        "next": person.last_next,
                    }
                )
            if len(reasons) >= 3:
                break
        if not any(r["eligible"] for r in reasons):
            return  # nobody who may work on it is waiting: not a stall of the queue
        self.log.stalls.append(
            Stall(job.job_id, job.progress_at, tasks["open"], len(idle), reasons)
        )

    def _end_stall(self, job: Job, now: float) -> None:
        for stall in self.log.stalls:
            if stall.job_id == job.job_id and stall.ended_at is None:
                stall.ended_at = now


def _fails(assignment: dict[str, Any]) -> bool:
    score = assignment["gold_score"]
    return score is not None and score < REJECT_BELOW


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
