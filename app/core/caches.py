"""Every per-process cache of the service, in one place: what is kept, for how long, and what
forgets it.

The annotator's hot path (next, heartbeat, release, submit) would otherwise spend most of its
time re-reading things that change rarely: the list of active jobs, an annotator's eligibility
verdicts, what an API token resolves to. Each is kept here for a time set in `Settings` and read
again after it. A change written through this process forgets the affected entries at once
(session events below, on flush); other processes see it within the cache time. None of these
can over-assign work: the claim statement itself re-checks the job's status, the annotator's task
limit and the task's free slots.

- `active_jobs`: the active jobs, highest priority first; `routing_cache_seconds`; forgotten
  when a job is written (activated, paused, changed), so this process serves a job it just
  activated at once (the claim statement re-checks the job's status in any case).
- `verdicts`: per annotator, (job ids, eligibility verdict per job);
  `eligibility_cache_seconds`; forgotten when the annotator's grant, job ban or profile is
  written.
- `tokens`: per token secret hash, a `security.KnownToken`; `auth_cache_seconds`; forgotten
  when the token or its user is written.
- `sweeps`: per job, when a claim last swept its expired leases (a throttle:
  `SWEEP_ON_CLAIM_EVERY`).
- `consensus_fits`: per job, its last fitted consensus model (parsed; a large job's is hundreds
  of KB of JSON); `consensus_fit_cache_seconds`; forgotten when a refit in this process writes.
- `webhook_listeners`: per client, the event types its active webhook endpoints subscribe to
  (`app.webhooks.listeners`); `listeners.CACHE_SECONDS`; forgotten when a change to the client's
  endpoints commits in this process.
- `job_pace`: per job, its median active seconds per task so far (`payouts.pay_shown`), shown
  with the pay before work; `pay_preview_cache_seconds`; nothing forgets it (a pace, not a
  promise).
- `job_schemas` and `label_studio_views`: per job version (id, `updated_at`), its label schema
  parsed (`app.jobs.service.job_schema`) and its Label Studio config with the object each control
  labels (`app.jobs.label_studio.job_view`); kept `FOREVER`: a new version is a new key.
- `gold_records`: per (annotator, job), their graded gold answers in the job, gold accuracy and
  the job's gold accuracy threshold (`app.routing.gold`), read when a claim in a job with gold
  needs the annotator's gold rate; `routing_cache_seconds`.

A time of 0 turns a cache off (tests do, to see grants and bans at once). `clear_all` forgets
every one of them (tests call it after each test: ids are reused once tables are emptied).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.models.accounts import ApiToken, User
from app.models.consensus import ConsensusFit
from app.models.jobs import Job
from app.models.qualification import AnnotatorProfile, JobBan, SkillGrant

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SWEEP_ON_CLAIM_EVERY = 1.0  # seconds between claim-time lease sweeps of one job, per process
FOREVER = math.inf  # the time of entries keyed by a version, which never go stale


class TtlCache(Generic[K, V]):
    """A thread-safe map whose entries are fresh for a time the reader names (settings differ
    per app, so the time is an argument of `get`, not of the cache). Bounded: when full, it
    starts over (cheaper than an LRU, and a miss only costs a query).

    Every forget or clear moves its `generation` on: a reader that takes it before a read and
    hands it to `put` keeps nothing read while an entry was being forgotten."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: K, ttl: float) -> V | None:
        """The value while younger than `ttl` seconds, else None (always None for ttl <= 0)."""
        if ttl <= 0:
            return None
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and 0 <= time.monotonic() - hit[0] < ttl:
            return hit[1]
        return None

    def generation(self) -> int:
        with self._lock:
            return self._generation

    def put(self, key: K, value: V, read_at: float, generation: int | None = None) -> None:
        """Keep `value`, read at `read_at` (`time.monotonic()` taken before the read, so an
        entry never looks younger than the data in it); with `generation` (as `generation()`
        said before the read), only if nothing was forgotten since."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if len(self._entries) >= self._max and key not in self._entries:
                self._entries.clear()
            self._entries[key] = (read_at, value)

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._generation += 1

    def forget_where(self, matches: Callable[[K, V], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._entries.items() if matches(k, v)]:
                del self._entries[key]
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


class Throttle:
    """At most one go per key every `every` seconds (of the caller's clock), per process."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, key: int, now: datetime) -> bool:
        """Whether the work is due for `key` at `now`; marks it done when it is."""
        tick = now.timestamp()
        with self._lock:
            if 0 <= tick - self._last.get(key, 0.0) < self._every:
                return False
            self._last[key] = tick
        return True

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


ACTIVE_JOBS_KEY = 0

# Values are typed by their owners (`app.routing`, `app.core.security`, `app.webhooks.listeners`,
# `app.jobs`), which read and write them through small functions of their own; the caches
# themselves hold anything.
active_jobs: TtlCache[int, Any] = TtlCache(max_entries=1)
verdicts: TtlCache[int, Any] = TtlCache(max_entries=50_000)
tokens: TtlCache[str, Any] = TtlCache(max_entries=100_000)
consensus_fits: TtlCache[int, Any] = TtlCache(max_entries=1_000)
webhook_listeners: TtlCache[int, Any] = TtlCache(max_entries=100_000)
job_schemas: TtlCache[tuple[int, object], Any] = TtlCache(max_entries=10_000)
label_studio_views: TtlCache[tuple[int, object], Any] = TtlCache(max_entries=10_000)
job_pace: TtlCache[int, Any] = TtlCache(max_entries=10_000)
gold_records: TtlCache[tuple[int, int], Any] = TtlCache(max_entries=100_000)
sweeps = Throttle(every=SWEEP_ON_CLAIM_EVERY)


def clear_all() -> None:
    """Forget everything (tests that change the world behind the service's back)."""
    for cache in (
        active_jobs,
        verdicts,
        tokens,
        consensus_fits,
        webhook_listeners,
        job_schemas,
        label_studio_views,
        job_pace,
        gold_records,
    ):
        cache.clear()
    sweeps.clear()


@event.listens_for(Session, "after_flush")
def _forget_what_changed(session: Session, _context: object) -> None:
    """Rows written through this process are read again on their next use."""
    changed = (*session.new, *session.dirty, *session.deleted)
    for obj in changed:
        if isinstance(obj, SkillGrant | JobBan):
            verdicts.forget(obj.annotator_id)
        elif isinstance(obj, AnnotatorProfile):
            verdicts.forget(obj.user_id)
    for obj in changed:
        if isinstance(obj, ConsensusFit):
            consensus_fits.forget(obj.job_id)
        elif isinstance(obj, Job):
            active_jobs.clear()
    secrets = {o.secret_hash for o in changed if isinstance(o, ApiToken)}
    users = {o.id for o in changed if isinstance(o, User)}
    if secrets or users:
        tokens.forget_where(lambda key, known: key in secrets or known.user_id in users)
