"""Request and response bodies for accounts, tokens and invites."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.accounts.emails import mixed_script_problem
from app.core.inputs import RequestBody
from app.models.accounts import Role, TokenKind, UserStatus

Password = Annotated[str, Field(min_length=10, max_length=256)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


def _one_script(email: str) -> str:
    problem = mixed_script_problem(email)
    if problem:
        raise PydanticCustomError("mixed_script_email", "{problem}", {"problem": problem})
    return email


#: An address a new account or invite may carry: a valid email whose local part does not mix
#: look-alike scripts (`app.accounts.emails`).
NewEmail = Annotated[EmailStr, AfterValidator(_one_script)]


class SignupRequest(RequestBody):
    email: NewEmail
    password: Password
    display_name: DisplayName
    role: Literal["client", "annotator"]
    invite_code: str | None = Field(default=None, max_length=200)


class LoginRequest(RequestBody):
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=256)]
    token_name: TokenName = "login"  # noqa: S105


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: Role
    status: UserStatus
    created_at: datetime


class AdminUserOut(UserOut):
    suspended_at: datetime | None
    suspended_reason: str | None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: TokenKind = Field(
        description="`login`: from login or signup (expires, capped per user); `api`: made "
        "on purpose"
    )
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    secret: str = Field(description="The token itself. Shown once; store it now.")


class TokenCreateRequest(RequestBody):
    name: TokenName
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class SessionOut(BaseModel):
    """A user and a fresh token (after signup or login)."""

    user: UserOut
    token: TokenCreated


class SuspendRequest(RequestBody):
    reason: Reason


class InviteCreateRequest(RequestBody):
    role: Literal["client", "annotator"]
    email: NewEmail | None = None
    expires_in_days: int = Field(default=14, ge=1, le=365)


class InviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: Role
    email: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class InviteCreated(InviteOut):
    code: str = Field(description="The invite code. Shown once.")
