"""What the annotator's hot path reads and writes, as a protocol with two implementations:
`postgresql.PgStore` (raw SQL on an async psycopg connection) and `sqlite.SqliteStore` (a
SQLAlchemy session under BEGIN IMMEDIATE). The sequence of every operation lives in `flow` and
every decision in `rules`; a store only runs SQL and returns the named snapshots below.

A store's methods are coroutines on both databases. SQLite's never suspend (its session is
synchronous): `sqlite.SqliteRunner` drives a whole operation on one worker thread without an
event loop (see `drive`), so a request costs one thread hop there and none on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from app.consensus.service import Consensus, Fit, Vote
from app.core.security import KnownToken
from app.models.jobs import AssignmentStatus, Job, TaskStatus
from app.routing.eligibility import JobsAndVerdicts
from app.routing.gold import GoldRecord
from app.routing.queue import EmptyQueue
from app.routing.rules import PrelabelView, SlotAfterSubmit, TaskItemView
from app.webhooks.hot_path import PendingEvent

R = TypeVar("R")


@dataclass(frozen=True)
class AssignmentState:
    """An assignment as the rules read it (satisfies `rules.LeaseState`)."""

    id: int
    annotator_id: int
    job_id: int
    task_id: int
    status: AssignmentStatus
    claimed_at: datetime
    lease_expires_at: datetime
    last_seen_at: datetime
    active_seconds: int
    answers_hash: str | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class TaskState:
    """A task's slots as the rules read them (satisfies `rules.SlotState`)."""

    status: TaskStatus
    live_count: int
    done_count: int
    overlap_target: int


@dataclass(frozen=True)
class SubmitState:
    """What a submit locks and reads: the assignment, its task and the items shown in slot
    order, the assignment's gold item included (with gold answers: for the server's own use
    only)."""

    assignment: AssignmentState
    task: TaskState
    items: list[TaskItemView]


@dataclass(frozen=True)
class Claimed:
    """A task claimed under a new lease: what the annotator is shown of it."""

    assignment_id: int
    task_id: int
    job_id: int
    lease_expires_at: datetime
    items: tuple[tuple[int, dict[str, Any]], ...]  # (slot, payload)
    # slot → (pre-label, model score), for jobs that show them (`flow.claim_next` adds them)
    prelabels: Mapping[int, tuple[dict[str, Any], float | None]] = field(default_factory=dict)
    has_gold: bool = False  # a task split with gold in it (before gold was chosen at claim)
    gold_slot: int | None = None  # where the gold item chosen at claim is shown, if any


@dataclass(frozen=True)
class AnswerRow:
    item_id: int
    value: Any
    score: float | None  # graded gold items only


@dataclass(frozen=True)
class SubmitWrite:
    """Everything a submit writes, decided by the flow: the answers, the assignment's new
    state and the task's counters."""

    assignment_id: int
    job_id: int
    client_id: int
    task_id: int
    annotator_id: int
    now: datetime
    answers: list[AnswerRow]
    active_seconds: int
    answers_hash: str
    gold_score: float | None  # mean score over the graded gold items
    slot: SlotAfterSubmit
    # When the task completes: its regular items, whose answers `record_submit` returns.
    consensus_items: list[int]
    # Webhook events of the job's client, written with the submit (only those it listens to).
    events: list[PendingEvent]


class Store(Protocol):
    """The SQL of the hot path on one database, on one connection or session."""

    def transaction(self) -> AbstractAsyncContextManager[object]:
        """Statements inside run in one transaction (SQLite: the whole operation already
        does)."""
        ...

    async def read_jobs_for(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> JobsAndVerdicts:
        """The active jobs to serve (one when `job_id` is given) with the annotator's
        verdicts, read (the flow has tried the caches)."""
        ...

    async def read_job(self, job_id: int) -> Job:
        """A job, read (the flow has tried the active-job cache)."""
        ...

    async def read_job_pace(self, job_ids: list[int]) -> dict[int, float | None]:
        """Each job's median active seconds per task so far, read and cached
        (`payouts.pay_shown.medians`; the flow has tried the cache)."""
        ...

    async def counted_assignments(self, annotator_id: int, job_id: int) -> int:
        """The annotator's assignments in the job that count towards its per-annotator limit."""
        ...

    async def sweep_expired(self, job_id: int, now: datetime) -> None:
        """Give the slots of the job's expired leases back to the pool."""
        ...

    async def claim(
        self, annotator_id: int, job: Job, n: int, now: datetime, lease_until: datetime
    ) -> list[Claimed]:
        """Up to `n` open tasks of an active job the annotator has not worked on (and, for tasks
        split with gold in them, whose gold items they have not seen), each taken under a lease;
        those gold items recorded as seen. Atomic on its own; never hands one slot to two
        annotators."""
        ...

    async def read_gold_record(self, annotator_id: int, job_id: int) -> GoldRecord:
        """The annotator's gold record in the job, read (the flow has tried the cache)."""
        ...

    async def add_gold(
        self, annotator_id: int, job_id: int, assignment_id: int, slot: int
    ) -> dict[str, Any] | None:
        """Add one gold item of the job the annotator has not been shown (random among them) to
        the assignment at `slot`, recorded as seen; its payload, or None when none is left."""
        ...

    async def explain_empty(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> list[EmptyQueue]:
        """Why a claim came back empty, per job asked (`queue.explain_empty`; reads only)."""
        ...

    async def read_prelabels(self, task_ids: Sequence[int]) -> list[PrelabelView]:
        """The pre-labels of the tasks' items (items without one left out)."""
        ...

    async def lock_assignment(self, assignment_id: int) -> AssignmentState | None: ...

    async def record_heartbeat(
        self, assignment_id: int, lease_expires_at: datetime, now: datetime, active_seconds: int
    ) -> None: ...

    async def record_release(
        self, assignment: AssignmentState, reason: str | None, now: datetime
    ) -> None:
        """Mark the assignment released and give its slot back."""
        ...

    async def lock_for_submit(self, assignment_id: int) -> SubmitState | None:
        """The assignment and its task, locked (assignment first, the lock order used
        everywhere), with the task's items."""
        ...

    async def stored_gold_scores(self, assignment: AssignmentState) -> list[tuple[int, float]]:
        """(slot, score) of the graded gold answers of a submitted assignment."""
        ...

    async def record_submit(self, write: SubmitWrite) -> list[Vote]:
        """Write the answers, the assignment and the task. Returns (item id, annotator id,
        answer) of every answer to `write.consensus_items` in answer order, this submit's last
        (nothing when the list is empty)."""
        ...

    async def read_fit(self, job_id: int) -> Fit | None:
        """The job's last fitted consensus model (None before its first fit)."""
        ...

    async def grow_overlap(self, task_id: int) -> None:
        """Reopen a task that just reached its target for one more answer (dynamic overlap)."""
        ...

    async def record_consensus(
        self,
        job: Job,
        method: str,
        results: Sequence[Consensus],
        now: datetime,
        events: Sequence[PendingEvent],
    ) -> None:
        """Insert or replace the consensus of each item, with the client's webhook events."""
        ...

    async def apply_submit_rules(self, assignment_id: int, now: datetime) -> None:
        """The quality rules on a submitted assignment (`app.quality.enforcement.check_submit`),
        after its submit committed, in a transaction of their own."""
        ...

    async def queue_completion_if_done(self, job_id: int, now: datetime) -> None:
        """After a submit that completed one of the job's tasks committed: queue the job's
        completion when no task is left (`app.jobs.completion`), in a statement or transaction
        of its own."""
        ...

    async def listening_types(self, client_id: int) -> frozenset[str]:
        """The webhook event types the client listens to (cached per process)."""
        ...


Operation = Callable[[Store], Coroutine[Any, Any, R]]


class Runner(Protocol):
    """One request's access to its database: on PostgreSQL the request's pooled connection,
    on SQLite a transaction per operation on one worker thread."""

    async def run(self, operation: Operation[R]) -> R:
        """Run an operation of `flow` on this database's store."""
        ...

    async def read_token(self, secret_hash: str) -> KnownToken | None:
        """`app.core.security.TokenReader` on this database."""
        ...


class Workplace(Protocol):
    """The hot path's database access, chosen once at start-up (`work.open_workplace`)."""

    def runner(self) -> AbstractAsyncContextManager[Runner]:
        """A runner for one request."""
        ...

    async def close(self) -> None: ...


def drive(operation: Awaitable[R]) -> R:
    """Run a coroutine that never suspends (every await inside completes at once, as with
    `SqliteStore`) to its result, on the calling thread, without an event loop."""
    coroutine = operation.__await__()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("A synchronous store's operation suspended")
