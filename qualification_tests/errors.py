"""Qualification's problem types: skills, grants, and starting and submitting an attempt."""

from __future__ import annotations

from app.core.errors import Conflict


class SkillExists(Conflict):
    slug, title = "skill-exists", "Skill already exists"


class GrantAlreadyRevoked(Conflict):
    slug, title = "grant-already-revoked", "Grant already revoked"


class AlreadyQualified(Conflict):
    """The annotator passed this test and its skill is in force: no retake until it expires."""

    slug, title = "already-qualified", "Already qualified"


class SkillRevoked(Conflict):
    """An admin revoked the skill this test granted the annotator; retaking would undo that
    decision (an admin can grant it again)."""

    slug, title = "skill-revoked", "Skill revoked by an admin"


class AttemptLimitReached(Conflict):
    slug, title = "attempt-limit-reached", "No attempts left"


class RetakeCooldown(Conflict):
    """The last attempt failed and the retake cooldown runs until `retake_after`."""

    slug, title = "retake-cooldown", "Retake cooldown running"


class NotEnoughQuestions(Conflict):
    """The test's bank has fewer active questions than an attempt draws."""

    slug, title = "not-enough-questions", "Not enough questions"


class ConcurrentStart(Conflict):
    """Another start of the same test by the same annotator won a race and already finished;
    starting again works."""

    slug, title = "concurrent-start", "Concurrent start; try again"


class AttemptAlreadyGraded(Conflict):
    slug, title = "attempt-already-graded", "Attempt already graded"
