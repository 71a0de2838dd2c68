"""The accounts domain's problem types: signup, invites, suspension. (`account-suspended`
stays in `app.core.errors`: core's token check answers it.)"""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden


class EmailTaken(Conflict):
    """An account with this email (compared case-insensitively) exists."""

    slug, title = "email-taken", "Email already registered"


class SignupClosed(Forbidden):
    slug, title = "signup-closed", "Signup closed"


class InviteRequired(Forbidden):
    slug, title = "invite-required", "Invite code required"


class InviteInvalid(Forbidden):
    """The invite code is unknown, used, expired, or for another role or email."""

    slug, title = "invite-invalid", "Invite code cannot be used"


class CannotSuspendSelf(Conflict):
    slug, title = "cannot-suspend-self", "Cannot suspend your own account"
