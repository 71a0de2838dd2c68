"""Every payload builder makes what the OpenAPI `webhooks` section documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.webhooks import catalog

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

BUILT: dict[str, dict[str, Any]] = {
    catalog.TASK_COMPLETED: catalog.task_completed(
        1, 2, AT, [(3, "r3", {"sentiment": "positive"}, 0.67, 3), (4, None, {}, 0.0, 3)]
    ),
    catalog.ASSIGNMENT_SUBMITTED: catalog.assignment_submitted(
        1, 2, 5, "0123456789abcdef", AT, 42, None, [(3, "r3", {"sentiment": "positive"})]
    ),
    catalog.JOB_PROGRESS: catalog.job_progress(1, "active", 40, 13),
    catalog.JOB_COMPLETED: catalog.job_completed(1, "Reviews", AT, "automatic", 40, 40),
    catalog.JOB_PAUSED: catalog.job_paused(1, AT, "escrow_exhausted"),
    catalog.IMPORT_FINISHED: catalog.import_finished(
        1,
        run_id=9,
        report={
            "format": "jsonl",
            "mode": "skip-invalid",
            "rows_read": 3,
            "accepted": 2,
            "created": 2,
            "unchanged": 0,
            "rejected": 1,
            "gold": 0,
            "errors": [{"line": 3, "detail": "bad", "pointer": "#/text"}],
            "errors_truncated": False,
            "tasks_created": 0,
        },
    ),
    catalog.EXPORT_READY: catalog.export_ready(1, "completed", ["jsonl", "csv"]),
    catalog.WEBHOOK_TEST: catalog.webhook_test(7),
}


@pytest.mark.parametrize("event_type", sorted(catalog.EVENTS))
def test_each_builder_makes_the_documented_payload(event_type: str) -> None:
    spec = catalog.EVENTS[event_type]
    body = catalog.envelope("evt_x", event_type, spec.version, AT, BUILT[event_type])
    parsed = spec.model.model_validate(body)
    assert parsed.timestamp == AT
    assert body["timestamp"] == "2026-03-01T12:30:00Z"


def test_progress_is_a_percentage_with_one_decimal() -> None:
    assert catalog.job_progress(1, "active", 3, 1)["percent_complete"] == 33.3
    assert catalog.job_progress(1, "active", 0, 0)["percent_complete"] == 0.0
