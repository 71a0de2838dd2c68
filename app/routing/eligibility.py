"""Which active jobs an annotator may work on, and why not.

A stand-in until the qualification package's `explain_eligibility` lands: every active job is
open to every active annotator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.models.jobs import Job, JobStatus


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    reasons: list[Reason] = field(default_factory=list)


def for_jobs(
    session: Session, annotator_id: int, jobs: Sequence[Job], now: datetime
) -> dict[int, Verdict]:
    return {
        job.id: Verdict(True)
        if job.status is JobStatus.active
        else Verdict(False, [Reason("job_not_active", f"the job is {job.status.value}")])
        for job in jobs
    }
