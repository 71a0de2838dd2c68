"""The per-process caches (`app.core.caches`): one mechanism, so `clear_all` forgets every one of
them, and a value read while its entry was being forgotten is not kept."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from app.core import caches
from app.core.caches import TtlCache
from app.jobs.label_studio import job_view
from app.jobs.service import job_schema
from app.models.jobs import Job
from app.webhooks import listeners
from tests.jobs.factories import SENTIMENT


def test_a_value_read_while_its_entry_was_forgotten_is_not_kept() -> None:
    cache: TtlCache[int, str] = TtlCache(max_entries=10)
    before_the_read = cache.generation()
    cache.forget(1)  # a change commits while the value is being read
    cache.put(1, "stale", time.monotonic(), before_the_read)
    assert cache.get(1, ttl=60) is None
    cache.put(1, "fresh", time.monotonic(), cache.generation())
    assert cache.get(1, ttl=60) == "fresh"


def test_clear_all_forgets_job_schemas_label_studio_views_and_webhook_listeners() -> None:
    job = Job(id=1, label_schema=SENTIMENT, created_at=datetime(2026, 3, 1, tzinfo=UTC))
    schema = job_schema(job)
    view = job_view(job, schema)
    listeners.remember(7, frozenset({"task.completed"}), listeners.current_generation())
    assert job_schema(job) is schema  # parsed once per job version
    assert job_view(job, schema) is view
    assert listeners.cached_types(7) == {"task.completed"}

    caches.clear_all()

    assert job_schema(job) is not schema
    assert job_view(job, schema) is not view
    assert listeners.cached_types(7) is None
