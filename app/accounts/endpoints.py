"""HTTP for accounts: signup, login, me, tokens, and the admin's user and invite lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.accounts import schemas, service, throttle
from app.accounts.errors import (
    EmailTaken,
    InviteInvalid,
    InviteRequired,
    SignupClosed,
)
from app.core.clock import utcnow
from app.core.errors import AccountSuspended, TooManyRequests, Unauthorized, problem_responses
from app.core.inputs import ParamText, PathId
from app.core.pagination import Page, PageParams, page_params
from app.core.security import (
    AdminPrincipal,
    CurrentPrincipal,
    DbSession,
    ReadSession,
    get_database,
)
from app.core.settings import Settings
from app.models.accounts import Role, UserStatus

router = APIRouter(prefix="/v1")

Paging = Annotated[PageParams, Depends(page_params)]


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def _token_out(issued: service.IssuedToken) -> schemas.TokenCreated:
    return schemas.TokenCreated(
        **schemas.TokenOut.model_validate(issued.token).model_dump(), secret=issued.secret
    )


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    tags=["auth"],
    response_model=schemas.SessionOut,
    responses=problem_responses(
        (SignupClosed, "the platform's signup policy is closed"),
        (InviteRequired, "the signup policy is invite and no invite_code was sent"),
        InviteInvalid,
        EmailTaken,
        (TooManyRequests, "too many signups from your address: wait `Retry-After` seconds"),
    ),
)
def signup(body: schemas.SignupRequest, session: DbSession, request: Request) -> schemas.SessionOut:
    """Register a client or annotator account (subject to the platform's signup policy). The
    token returned is a login token: it expires after `TESSERA_LOGIN_TOKEN_DAYS`."""
    settings = _settings(request)
    attempts = throttle.signup_attempts(settings, host=_client_host(request))
    throttle.admit(get_database(request), attempts, utcnow())
    user, issued = service.signup(
        session,
        settings,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        role=Role(body.role),
        invite_code=body.invite_code,
    )
    session.commit()
    return schemas.SessionOut(user=schemas.UserOut.model_validate(user), token=_token_out(issued))


@router.post(
    "/auth/login",
    tags=["auth"],
    response_model=schemas.SessionOut,
    responses=problem_responses(
        (Unauthorized, "wrong email or password (the same for an unknown email)"),
        AccountSuspended,
        (
            TooManyRequests,
            "too many failed logins for this account, or logins from your address: wait "
            "`Retry-After` seconds",
        ),
    ),
)
def login(body: schemas.LoginRequest, session: DbSession, request: Request) -> schemas.SessionOut:
    """Exchange email and password for a new login token, which expires after
    `TESSERA_LOGIN_TOKEN_DAYS` (a user keeps at most `TESSERA_LOGIN_TOKENS_PER_USER` of them:
    the oldest are revoked). Failed attempts are limited per account and per address."""
    settings = _settings(request)
    email = service.normalize_email(body.email)
    host = _client_host(request)
    attempts = throttle.login_attempts(settings, email=email, host=host)
    throttle.admit(get_database(request), attempts, utcnow())
    user, issued = service.login(
        session,
        settings,
        email=email,
        password=body.password,
        token_name=body.token_name,
        host=host,
    )
    session.commit()
    return schemas.SessionOut(user=schemas.UserOut.model_validate(user), token=_token_out(issued))


@router.get("/me", tags=["me"], response_model=schemas.UserOut)
def me(principal: CurrentPrincipal) -> schemas.UserOut:
    return schemas.UserOut.model_validate(principal.user)


@router.get("/me/tokens", tags=["me"], response_model=list[schemas.TokenOut])
def list_tokens(principal: CurrentPrincipal, session: ReadSession) -> list[schemas.TokenOut]:
    return [schemas.TokenOut.model_validate(t) for t in service.list_tokens(session, principal.id)]


@router.post(
    "/me/tokens",
    tags=["me"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.TokenCreated,
)
def create_token(
    body: schemas.TokenCreateRequest, principal: CurrentPrincipal, session: DbSession
) -> schemas.TokenCreated:
    """Create an API token; its secret is in this response only."""
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued = service.issue_token(session, principal.user, body.name, expires)
    session.commit()
    return _token_out(issued)


@router.delete("/me/tokens/{token_id}", tags=["me"], status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: PathId, principal: CurrentPrincipal, session: DbSession) -> Response:
    service.revoke_token(session, principal.id, token_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/admin/users", tags=["admin"], response_model=Page[schemas.AdminUserOut])
def list_users(
    _: AdminPrincipal,
    session: ReadSession,
    paging: Paging,
    role: Role | None = None,
    status_: Annotated[UserStatus | None, Query(alias="status")] = None,
    email: Annotated[
        ParamText | None, Query(max_length=320, description="Part of the email")
    ] = None,
) -> Page[schemas.AdminUserOut]:
    users, cursor = service.list_users(
        session, paging, role=role, status=status_, email_contains=email
    )
    return Page(items=[schemas.AdminUserOut.model_validate(u) for u in users], next_cursor=cursor)


@router.post(
    "/admin/users/{user_id}/reactivate", tags=["admin"], response_model=schemas.AdminUserOut
)
def reactivate_user(user_id: PathId, _: AdminPrincipal, session: DbSession) -> schemas.AdminUserOut:
    """Lift a suspension: the account's tokens work again. A client's jobs paused by the
    suspension stay paused until an admin resumes each (`POST /v1/jobs/{id}/activate`).
    (Suspending is `app.quality.endpoints`: it pauses the client's jobs, a layer above.)"""
    user = service.reactivate_user(session, user_id=user_id)
    session.commit()
    return schemas.AdminUserOut.model_validate(user)


@router.post(
    "/admin/invites",
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.InviteCreated,
)
def create_invite(
    body: schemas.InviteCreateRequest, admin: AdminPrincipal, session: DbSession
) -> schemas.InviteCreated:
    """Create a single-use invite code (for the `invite` signup policy)."""
    invite, code = service.create_invite(
        session,
        role=Role(body.role),
        email=body.email,
        expires_in=timedelta(days=body.expires_in_days),
        admin_id=admin.id,
    )
    session.commit()
    return schemas.InviteCreated(**schemas.InviteOut.model_validate(invite).model_dump(), code=code)


@router.get("/admin/invites", tags=["admin"], response_model=Page[schemas.InviteOut])
def list_invites(
    _: AdminPrincipal, session: ReadSession, paging: Paging
) -> Page[schemas.InviteOut]:
    invites, cursor = service.list_invites(session, paging)
    return Page(items=[schemas.InviteOut.model_validate(i) for i in invites], next_cursor=cursor)
