"""Problem types a client can branch on: one slug per condition, listed in the OpenAPI document of
every endpoint that may answer with it, as application/problem+json."""

from __future__ import annotations

from typing import Any

import pytest

import app.main  # noqa: F401  (imports every domain, and so every domain's problem types)
import payouts.errors
import qualification_tests.errors
from app.accounts import errors as accounts_errors
from app.core import errors
from app.jobs import errors as jobs_errors
from app.jobs.errors import TransitionNotAllowed
from app.quality import errors as quality_errors
from app.routing import errors as routing_errors
from app.webhooks import errors as webhooks_errors
from qualification_tests.errors import RetakeCooldown

ERRORS_MODULES = (
    errors,
    accounts_errors,
    jobs_errors,
    quality_errors,
    routing_errors,
    webhooks_errors,
    payouts.errors,
    qualification_tests.errors,
)

# (method, path) -> the problem slugs the endpoint must declare.
DECLARED = {
    ("patch", "/v1/jobs/{job_id}"): {"job-finished", "job-frozen", "label-schema-locked"},
    ("post", "/v1/jobs/{job_id}/activate"): {"transition-not-allowed", "job-has-no-items"},
    ("post", "/v1/jobs/{job_id}/pause"): {"transition-not-allowed"},
    ("post", "/v1/jobs/{job_id}/complete"): {"transition-not-allowed"},
    ("post", "/v1/jobs/{job_id}/cancel"): {"transition-not-allowed"},
    ("post", "/v1/jobs/{job_id}/items"): {
        "job-finished",
        "payload-too-large",
        "unsupported-media-type",
        "validation-failed",
    },
    ("get", "/v1/jobs/{job_id}/export"): {"export-format-unavailable"},
    ("post", "/v1/auth/signup"): {
        "signup-closed",
        "invite-required",
        "invite-invalid",
        "email-taken",
    },
    ("post", "/v1/auth/login"): {"account-suspended"},
    ("post", "/v1/admin/users/{user_id}/suspend"): {"cannot-suspend-self"},
    ("post", "/v1/admin/skills"): {"skill-exists"},
    ("post", "/v1/admin/skill-grants/{grant_id}/revoke"): {"grant-already-revoked"},
    ("post", "/v1/annotator/qualification-tests/{test_id}/attempts"): {
        "already-qualified",
        "skill-revoked",
        "attempt-limit-reached",
        "retake-cooldown",
        "not-enough-questions",
        "concurrent-start",
    },
    ("post", "/v1/annotator/attempts/{attempt_id}/submit"): {"attempt-already-graded"},
}


def declared_problems(operation: dict[str, Any]) -> dict[str, int]:
    """slug -> status of every problem example the operation declares."""
    out: dict[str, int] = {}
    for status, response in operation["responses"].items():
        problem = response.get("content", {}).get("application/problem+json")
        if problem is None:
            continue
        for slug, example in problem["examples"].items():
            assert example["value"]["type"] == f"/problems/{slug}"
            assert example["value"]["status"] == int(status)
            out[slug] = int(status)
    return out


@pytest.mark.parametrize(("method", "path"), sorted(DECLARED))
def test_each_endpoint_lists_the_problems_it_may_answer_with(
    openapi_document: dict[str, Any], method: str, path: str
) -> None:
    operation = openapi_document["paths"][path][method]
    assert set(declared_problems(operation)) >= DECLARED[(method, path)]


# The packages whose problem types the service answers with (tests define throwaway ones).
PACKAGES = ("app", "payouts", "qualification_tests", "workers")


def problem_types() -> list[type[errors.TesseraError]]:
    """Every problem type of the service: each domain keeps its own in its `errors` module, so
    they are collected as registered at import (TesseraError's subclasses), not listed in core.
    (TesseraError itself is the abstract base; BadRequest carries its slug.)"""
    found: dict[type[errors.TesseraError], None] = {}
    pending = [errors.TesseraError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.split(".")[0] in PACKAGES:
                found[subclass] = None
    return list(found)


def test_problem_slugs_are_unique_and_each_class_keeps_its_parents_status() -> None:
    problems = problem_types()
    listed = {
        c
        for module in ERRORS_MODULES
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, errors.TesseraError)
    }
    assert listed - set(problems) == {errors.TesseraError}
    slugs = [c.slug for c in problems]
    assert len(slugs) == len(set(slugs))
    assert TransitionNotAllowed.status == 409
    assert errors.AccountSuspended.status == 403
    assert issubclass(errors.AccountSuspended, errors.Forbidden)  # callers catching 403 still do


def test_a_problem_renders_its_own_type() -> None:
    body = RetakeCooldown("wait", retake_after="2030-01-01T00:00:00+00:00").to_problem()
    assert body == {
        "type": "/problems/retake-cooldown",
        "title": "Retake cooldown running",
        "status": 409,
        "detail": "wait",
        "retake_after": "2030-01-01T00:00:00+00:00",
    }
