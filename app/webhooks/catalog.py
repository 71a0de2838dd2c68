"""The events clients can subscribe to: names, payload versions, documented shapes, and the
builders that make each payload.

Every delivery body is one JSON envelope, `{"id", "type", "version", "timestamp", "data"}`: the
Standard Webhooks payload layout (`type`, `timestamp`, `data`) plus the event id (also sent as the
`webhook-id` header) and the payload version. Within a version a payload only gains fields; a
change that could break a receiver gets a new version, and stored events keep the version they
were recorded with.

Builders are plain functions of plain values (no session, no clock), so a store writing its own
SQL (the PostgreSQL hot path) builds exactly what the ORM path builds; a test checks each builder's
output against the model documented in the OpenAPI `webhooks` section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

TASK_COMPLETED: Final = "task.completed"
ASSIGNMENT_SUBMITTED: Final = "assignment.submitted"
JOB_PROGRESS: Final = "job.progress"
JOB_COMPLETED: Final = "job.completed"
JOB_PAUSED: Final = "job.paused"
IMPORT_FINISHED: Final = "import.finished"
EXPORT_READY: Final = "export.ready"
WEBHOOK_TEST: Final = "webhook.test"  # sent on request to one endpoint; not subscribable

# What an endpoint may subscribe to (validated as a literal, so an unknown type is a 422).
EventType = Literal[
    "task.completed",
    "assignment.submitted",
    "job.progress",
    "job.completed",
    "job.paused",
    "import.finished",
    "export.ready",
]

PauseReason = Literal["paused_by_client", "paused_by_admin", "client_suspended", "escrow_exhausted"]
CompletedBy = Literal["client", "admin", "automatic"]


def iso(moment: datetime) -> str:
    """A timestamp as payloads carry it: ISO 8601 in UTC with a `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the documented payloads --------------------------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsensusItem(_Data):
    item_id: int
    external_id: str | None = Field(description="The id the item was uploaded with, if any")
    label: dict[str, Any] = Field(description="The consensus answer, one value per control")
    confidence: float = Field(ge=0, le=1)
    answer_count: int


class TaskCompletedData(_Data):
    job_id: int
    task_id: int
    completed_at: datetime
    items: list[ConsensusItem] = Field(description="Regular items of the task (gold excluded)")


class SubmittedAnswer(_Data):
    item_id: int
    external_id: str | None
    answer: dict[str, Any]


class AssignmentSubmittedData(_Data):
    job_id: int
    task_id: int
    assignment_id: int
    annotator: str = Field(
        description="Pseudonymous annotator id, stable per client (as in exports)"
    )
    submitted_at: datetime
    active_seconds: int
    gold_score: float | None = Field(description="Mean score on the task's gold items, if any")
    answers: list[SubmittedAnswer] = Field(description="One per task item, in slot order")


class JobProgressData(_Data):
    job_id: int
    status: str
    tasks_total: int = Field(description="Tasks of the job that were not cancelled")
    tasks_complete: int
    percent_complete: float = Field(ge=0, le=100)


class JobCompletedData(_Data):
    job_id: int
    title: str
    completed_at: datetime
    completed_by: CompletedBy
    tasks_total: int
    tasks_complete: int


class JobPausedData(_Data):
    job_id: int
    paused_at: datetime
    reason: PauseReason = Field(description="Why the job stopped handing out work")
    detail: str


class ImportReport(_Data):
    format: str
    mode: str
    rows_read: int
    accepted: int
    created: int
    unchanged: int
    rejected: int
    gold: int
    errors: list[dict[str, Any]] = Field(
        description="Bad rows with their line and a pointer (the first 100)"
    )
    errors_truncated: bool
    tasks_created: int
    annotations: int = Field(
        default=0, description="Annotations of Label Studio tasks read (cancelled ones aside)"
    )
    gold_from_annotations: int = Field(
        default=0, description="Label Studio tasks whose annotation became the gold answer"
    )


class ImportFinishedData(_Data):
    job_id: int
    run_id: int | None = Field(description="The background run (GET /v1/runs/{id}); null inline")
    background: bool
    outcome: Literal["succeeded", "failed"]
    report: ImportReport | None = Field(description="The import report when it succeeded")
    problem: dict[str, Any] | None = Field(
        description="RFC 9457 problem details when it failed (the first 100 bad rows in "
        "`errors`; `errors_truncated` when there were more)"
    )


class ConsensusFitRef(_Data):
    method: str = Field(description="The consensus method fitted")
    version: int = Field(description="The job's fit version (1, 2, ...)")
    fitted_at: datetime


class ExportReadyData(_Data):
    job_id: int
    job_status: Literal["completed", "cancelled"]
    exports: dict[str, str] = Field(
        description="Format → path of the streamed export (relative to the API's base URL)"
    )
    consensus_fit: ConsensusFitRef | None = Field(
        default=None,
        description="The consensus fit the exports reflect (a completed job's final refit, "
        "over every answer); null when the job was never fitted (its consensus is the online "
        "vote). Exports name it too, in their `Tessera-Consensus-*` headers.",
    )


class WebhookTestData(_Data):
    endpoint_id: int
    message: str


class _Envelope(BaseModel):
    id: str = Field(description="The event id, also the `webhook-id` header: dedupe on it")
    version: int = Field(description="Payload version of this event type")
    timestamp: datetime = Field(description="When the event happened (not when it was sent)")


class TaskCompletedEvent(_Envelope):
    type: Literal["task.completed"]
    data: TaskCompletedData


class AssignmentSubmittedEvent(_Envelope):
    type: Literal["assignment.submitted"]
    data: AssignmentSubmittedData


class JobProgressEvent(_Envelope):
    type: Literal["job.progress"]
    data: JobProgressData


class JobCompletedEvent(_Envelope):
    type: Literal["job.completed"]
    data: JobCompletedData


class JobPausedEvent(_Envelope):
    type: Literal["job.paused"]
    data: JobPausedData


class ImportFinishedEvent(_Envelope):
    type: Literal["import.finished"]
    data: ImportFinishedData


class ExportReadyEvent(_Envelope):
    type: Literal["export.ready"]
    data: ExportReadyData


class WebhookTestEvent(_Envelope):
    type: Literal["webhook.test"]
    data: WebhookTestData


@dataclass(frozen=True)
class EventSpec:
    name: str
    version: int
    model: type[_Envelope]
    summary: str
    description: str


EVENTS: Final[Mapping[str, EventSpec]] = {
    spec.name: spec
    for spec in (
        EventSpec(
            TASK_COMPLETED,
            1,
            TaskCompletedEvent,
            "A task reached consensus",
            "A task got its last needed answer: the consensus label and confidence of each of "
            "its regular items.",
        ),
        EventSpec(
            ASSIGNMENT_SUBMITTED,
            1,
            AssignmentSubmittedEvent,
            "An annotator submitted an assignment",
            "One annotator's answers to one task, for clients who review work as it comes in.",
        ),
        EventSpec(
            JOB_PROGRESS,
            1,
            JobProgressEvent,
            "A job made progress",
            "Share of the job's tasks complete. Sent when it has moved by 5 points or more "
            "since the last one, at most once a minute per job, while the job is active.",
        ),
        EventSpec(
            JOB_COMPLETED,
            1,
            JobCompletedEvent,
            "A job was completed",
            "The job moved to `completed` (by its client, an admin, or automatically).",
        ),
        EventSpec(
            JOB_PAUSED,
            1,
            JobPausedEvent,
            "A job was paused",
            "The job stopped handing out new tasks; `reason` says why (`paused_by_client`, "
            "`paused_by_admin`, `escrow_exhausted`).",
        ),
        EventSpec(
            IMPORT_FINISHED,
            1,
            ImportFinishedEvent,
            "A dataset import finished",
            "An upload was imported (inline or by a background run) with its report, or a "
            "background import failed (with the problem listing every bad row).",
        ),
        EventSpec(
            EXPORT_READY,
            1,
            ExportReadyEvent,
            "A job's results are final",
            "The job was completed or cancelled, so its results will not change: fetch them "
            "from the export paths (exports are streamed on request). A completed job's is sent "
            "after its final consensus refit, which `consensus_fit` names.",
        ),
        EventSpec(
            WEBHOOK_TEST,
            1,
            WebhookTestEvent,
            "A test event",
            "Sent when you ask for one (`POST /v1/webhooks/endpoints/{id}/test`), to that "
            "endpoint only; it cannot be subscribed to.",
        ),
    )
}


def envelope(
    public_id: str, event_type: str, version: int, at: datetime, data: Any
) -> dict[str, Any]:
    """The body of a delivery, before serialization."""
    return {
        "id": public_id,
        "type": event_type,
        "version": version,
        "timestamp": iso(at),
        "data": data,
    }


# --- payload builders ---------------------------------------------------------------------------


def task_completed(
    job_id: int,
    task_id: int,
    completed_at: datetime,
    items: Iterable[tuple[int, str | None, dict[str, Any], float, int]],
) -> dict[str, Any]:
    """`items`: (item id, external id, consensus label, confidence, answer count) per regular
    item."""
    return {
        "job_id": job_id,
        "task_id": task_id,
        "completed_at": iso(completed_at),
        "items": [
            {
                "item_id": item_id,
                "external_id": external_id,
                "label": label,
                "confidence": confidence,
                "answer_count": count,
            }
            for item_id, external_id, label, confidence, count in items
        ],
    }


def assignment_submitted(
    job_id: int,
    task_id: int,
    assignment_id: int,
    annotator: str,
    submitted_at: datetime,
    active_seconds: int,
    gold_score: float | None,
    answers: Iterable[tuple[int, str | None, dict[str, Any]]],
) -> dict[str, Any]:
    """`annotator` is the pseudonym (`app.core.security.client_pseudonym`);
    `answers`: (item id, external id, answer) per task item in slot order."""
    return {
        "job_id": job_id,
        "task_id": task_id,
        "assignment_id": assignment_id,
        "annotator": annotator,
        "submitted_at": iso(submitted_at),
        "active_seconds": active_seconds,
        "gold_score": gold_score,
        "answers": [
            {"item_id": item_id, "external_id": external_id, "answer": answer}
            for item_id, external_id, answer in answers
        ],
    }


def job_progress(job_id: int, status: str, tasks_total: int, tasks_complete: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": status,
        "tasks_total": tasks_total,
        "tasks_complete": tasks_complete,
        "percent_complete": percent(tasks_complete, tasks_total),
    }


def percent(done: int, total: int) -> float:
    """Share complete in percent, one decimal (0 for an empty job)."""
    return round(100.0 * done / total, 1) if total else 0.0


def job_completed(
    job_id: int,
    title: str,
    completed_at: datetime,
    completed_by: CompletedBy,
    tasks_total: int,
    tasks_complete: int,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "title": title,
        "completed_at": iso(completed_at),
        "completed_by": completed_by,
        "tasks_total": tasks_total,
        "tasks_complete": tasks_complete,
    }


PAUSE_DETAILS: Final[Mapping[str, str]] = {
    "paused_by_client": "The job's client paused it.",
    "paused_by_admin": "An administrator paused the job.",
    "client_suspended": "The client's account was suspended; an administrator resumes the job.",
    "escrow_exhausted": "The job's escrow cannot pay for more work; fund it to resume.",
}


def job_paused(job_id: int, paused_at: datetime, reason: PauseReason) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "paused_at": iso(paused_at),
        "reason": reason,
        "detail": PAUSE_DETAILS[reason],
    }


def import_finished(
    job_id: int,
    *,
    run_id: int | None,
    report: Mapping[str, Any] | None = None,
    problem: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Exactly one of `report` (the import report, as `GET /v1/runs/{id}` shows it) and
    `problem` (the failure) is given. Bad rows are cut to the first `MAX_EVENT_ERRORS`, to keep
    the payload small (the run or the response has them all)."""
    if (report is None) == (problem is None):
        raise ValueError("give the report of a finished import or the problem of a failed one")
    return {
        "job_id": job_id,
        "run_id": run_id,
        "background": run_id is not None,
        "outcome": "succeeded" if report is not None else "failed",
        "report": _fewer_errors(report, "errors_truncated") if report is not None else None,
        "problem": _fewer_errors(problem, "errors_truncated") if problem is not None else None,
    }


MAX_EVENT_ERRORS: Final = 100


def _fewer_errors(body: Mapping[str, Any], flag: str) -> dict[str, Any]:
    out = dict(body)
    errors = out.get("errors") or []
    if len(errors) > MAX_EVENT_ERRORS:
        out["errors"] = errors[:MAX_EVENT_ERRORS]
        out[flag] = True
    return out


def export_ready(
    job_id: int,
    job_status: str,
    formats: Iterable[str],
    fit: tuple[str, int, datetime] | None = None,
) -> dict[str, Any]:
    """`fit`: (method, version, fitted_at) of the consensus fit the exports reflect."""
    return {
        "job_id": job_id,
        "job_status": job_status,
        "exports": {fmt: f"/v1/jobs/{job_id}/export?format={fmt}" for fmt in formats},
        "consensus_fit": None
        if fit is None
        else {"method": fit[0], "version": fit[1], "fitted_at": iso(fit[2])},
    }


def webhook_test(endpoint_id: int) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "message": "A test event from Tessera: your endpoint received and can verify it.",
    }
