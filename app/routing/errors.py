"""Routing's problem types: the annotator's work on an assignment (claim, heartbeat, release,
submit), each a condition the client program can act on."""

from __future__ import annotations

from app.core.errors import Conflict


class LeaseEnded(Conflict):
    """The lease ran out (and, for a submit, the grace period for late answers too)."""

    slug, title = "lease-ended", "The assignment's lease has ended"


class SlotTaken(Conflict):
    """A late submit whose slot went back to the pool and on to someone else."""

    slug, title = "slot-taken", "The task's slot was given to someone else"


class AnswersDiffer(Conflict):
    """A second submit of an assignment with answers other than the first's."""

    slug, title = "answers-differ", "The assignment was already submitted with other answers"


class AssignmentReleased(Conflict):
    slug, title = "assignment-released", "The assignment was released"


class AlreadySubmitted(Conflict):
    slug, title = "already-submitted", "The assignment was already submitted"
