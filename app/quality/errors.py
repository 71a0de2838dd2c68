"""Quality's problem types: review, appeals and rule actions."""

from __future__ import annotations

from app.core.errors import Conflict


class AssignmentNotSubmitted(Conflict):
    """Only submitted work can be reviewed; `errors` name the assignments that are still
    active, released or expired."""

    slug, title = "assignment-not-submitted", "Assignment not submitted"


class AssignmentAlreadyApproved(Conflict):
    """Approved work is final: it cannot be rejected; `errors` name the assignments."""

    slug, title = "assignment-already-approved", "Assignment already approved"


class NothingToAppeal(Conflict):
    """The assignment has no such judgment to appeal: it is not rejected, or no gold score was
    shown for it (gold scores are shown, and so appealable, on jobs with instant feedback)."""

    slug, title = "nothing-to-appeal", "Nothing to appeal"


class AppealExists(Conflict):
    """This judgment of this assignment was appealed already; each may be appealed once."""

    slug, title = "appeal-exists", "Already appealed"


class AppealResolved(Conflict):
    """The appeal was resolved already; its resolution stands."""

    slug, title = "appeal-resolved", "Appeal already resolved"


class ActionNotOpen(Conflict):
    """Only an open rule action can be confirmed; a reversed one cannot be changed again
    (`current_status` says where it stands)."""

    slug, title = "action-not-open", "Rule action not open"
