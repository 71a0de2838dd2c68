"""Accounts: signup, login, API tokens, invites, suspension. Services flush, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts import throttle
from app.accounts.emails import email_key, mixed_script_problem
from app.accounts.errors import (
    CannotSuspendSelf,
    EmailTaken,
    InviteInvalid,
    InviteRequired,
    SignupClosed,
)
from app.core.clock import utcnow
from app.core.errors import AccountSuspended, Forbidden, NotFound, Unauthorized, ValidationFailed
from app.core.pagination import PageParams, page_of, paginate
from app.core.security import hash_password, hash_secret, new_secret, verify_password
from app.core.settings import Settings, SignupPolicy
from app.models.accounts import ApiToken, Invite, Role, TokenKind, User, UserStatus

INVITE_PREFIX = "inv_"
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def normalize_email(email: str) -> str:
    """The key an address is compared by (`emails.email_key`: NFKC, case-folded)."""
    return email_key(email)


def create_user(
    session: Session, *, email: str, display_name: str, role: Role, password: str | None
) -> User:
    """Create a user, keeping the email as typed; 409 if its key (`emails.email_key`: NFKC,
    case-folded) is taken."""
    email = email.strip()
    key = email_key(email)
    if session.scalar(select(User.id).where(User.email_key == key)) is not None:
        raise EmailTaken(
            "An account with this email already exists",
            errors=[{"pointer": "#/email", "detail": "already registered"}],
        )
    user = User(
        email=email,
        email_key=key,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password) if password else None,
        status=UserStatus.active,
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent signup won the race for this email
        raise EmailTaken("An account with this email already exists") from None
    return user


def issue_token(
    session: Session,
    user: User,
    name: str,
    expires_in: timedelta | None = None,
    kind: TokenKind = TokenKind.api,
) -> IssuedToken:
    """Create an API token; the secret is returned here and never again."""
    secret = new_secret()
    token = ApiToken(
        user_id=user.id,
        name=name,
        kind=kind,
        prefix=secret[:12],
        secret_hash=hash_secret(secret),
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def issue_login_token(session: Session, settings: Settings, user: User, name: str) -> IssuedToken:
    """A token for an interactive session (login, signup): it expires after
    `TESSERA_LOGIN_TOKEN_DAYS`, and the user keeps at most `TESSERA_LOGIN_TOKENS_PER_USER` live
    ones, the oldest beyond that revoked (tokens made on purpose are not counted). The user's
    row is locked meanwhile, so concurrent logins cannot leave more."""
    session.scalar(select(User.id).where(User.id == user.id).with_for_update())
    issued = issue_token(
        session, user, name, timedelta(days=settings.login_token_days), TokenKind.login
    )
    now = utcnow()
    beyond_cap = (
        select(ApiToken)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.kind == TokenKind.login,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
        )
        .order_by(ApiToken.id.desc())
        .offset(settings.login_tokens_per_user)
    )
    # Through the ORM, not a bulk UPDATE: the token cache forgets them at once (caches.py).
    for token in session.scalars(beyond_cap):
        token.revoked_at = now
    session.flush()
    return issued


def signup(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role,
    invite_code: str | None,
) -> tuple[User, IssuedToken]:
    """Register a client or annotator under the platform's signup policy."""
    if role is Role.admin:
        raise Forbidden("Admin accounts are created with `tessera admin create`")
    policy = settings.signup_policy
    if policy is SignupPolicy.closed:
        raise SignupClosed("Signup is closed on this platform; ask an administrator for an account")
    invite = None
    if policy is SignupPolicy.invite:
        invite = _usable_invite(session, invite_code, email, role)
    user = create_user(
        session, email=email, display_name=display_name, role=role, password=password
    )
    if invite is not None:
        invite.used_at = utcnow()
        invite.used_by_id = user.id
    return user, issue_login_token(session, settings, user, "signup")


def _usable_invite(session: Session, code: str | None, email: str, role: Role) -> Invite:
    if not code:
        raise InviteRequired(
            "Signup on this platform needs an invite code",
            errors=[{"pointer": "#/invite_code", "detail": "required"}],
        )
    invite = session.scalar(
        select(Invite).where(Invite.code_hash == hash_secret(code)).with_for_update()
    )
    problem = None
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        problem = "unknown, used or expired invite code"
    elif invite.role is not role:
        problem = f"this invite is for a {invite.role.value} account"
    elif invite.email is not None and invite.email != normalize_email(email):
        problem = "this invite is for another email address"
    if problem:
        raise InviteInvalid(
            "The invite code cannot be used",
            errors=[{"pointer": "#/invite_code", "detail": problem}],
        )
    assert invite is not None
    return invite


def login(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    token_name: str,
    host: str | None,
) -> tuple[User, IssuedToken]:
    """Check a password and issue a login token; 401 for a wrong email or password alike. The
    caller has counted the attempt (`throttle.admit`); a success forgets the account's
    counted failures."""
    email = normalize_email(email)
    user = session.scalar(select(User).where(User.email_key == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("Wrong email or password")
    if user.status is UserStatus.suspended:
        raise AccountSuspended("This account is suspended", reason=user.suspended_reason)
    throttle.clear_account(session, settings, email, host)
    return user, issue_login_token(session, settings, user, token_name)


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id))
    )


def revoke_token(session: Session, user_id: int, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (404 for anyone else's). Revoking twice is a no-op."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound("No such token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token


def list_users(
    session: Session,
    params: PageParams,
    *,
    role: Role | None = None,
    status: UserStatus | None = None,
    email_contains: str | None = None,
) -> tuple[list[User], int | None]:
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if status is not None:
        stmt = stmt.where(User.status == status)
    if email_contains:
        stmt = stmt.where(User.email_key.contains(normalize_email(email_contains), autoescape=True))
    users = list(session.scalars(paginate(stmt, User.id, params)))
    return page_of(users, params, [u.id for u in users])


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    return user


def suspend_user(session: Session, *, user_id: int, reason: str, admin_id: int) -> User:
    """Suspend an account: its tokens stop working at once (403; on the annotators' hot path
    served by another API process, within `TESSERA_AUTH_CACHE_SECONDS`). Admins cannot suspend
    themselves, so a platform never locks out its last administrator by accident."""
    if user_id == admin_id:
        raise CannotSuspendSelf("You cannot suspend your own account")
    user = get_user(session, user_id)
    user.status = UserStatus.suspended
    user.suspended_at = utcnow()
    user.suspended_reason = reason
    user.suspended_by_id = admin_id
    session.flush()
    return user


def reactivate_user(session: Session, *, user_id: int) -> User:
    user = get_user(session, user_id)
    user.status = UserStatus.active
    user.suspended_at = None
    user.suspended_reason = None
    user.suspended_by_id = None
    session.flush()
    return user


def create_invite(
    session: Session, *, role: Role, email: str | None, expires_in: timedelta, admin_id: int
) -> tuple[Invite, str]:
    code = new_secret(INVITE_PREFIX)
    invite = Invite(
        code_hash=hash_secret(code),
        role=role,
        email=normalize_email(email) if email else None,
        created_by_id=admin_id,
        expires_at=utcnow() + expires_in,
    )
    session.add(invite)
    session.flush()
    return invite, code


def list_invites(session: Session, params: PageParams) -> tuple[list[Invite], int | None]:
    invites = list(session.scalars(paginate(select(Invite), Invite.id, params)))
    return page_of(invites, params, [i.id for i in invites])


def create_admin(
    session: Session, *, email: str, display_name: str, password: str | None
) -> tuple[User, IssuedToken]:
    """Create an administrator (CLI only) and a first token for them."""
    user = create_user(
        session, email=email, display_name=display_name, role=Role.admin, password=password
    )
    return user, issue_token(session, user, "cli")


def create_account_with_token(
    session: Session, *, email: str, display_name: str, role: Role
) -> tuple[User, str]:
    """A password-less account with a token (demo content and scripted set-ups)."""
    user = create_user(session, email=email, display_name=display_name, role=role, password=None)
    return user, issue_token(session, user, "demo").secret


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def count_admins(session: Session) -> int:
    return session.scalar(select(func.count()).where(User.role == Role.admin)) or 0


def ensure_valid_email(email: str) -> str:
    """Validate an email outside a request body (CLI input)."""
    try:
        valid = _EMAIL.validate_python(email)
    except ValidationError as exc:
        raise ValidationFailed(f"not a valid email address: {email}") from exc
    problem = mixed_script_problem(valid)
    if problem:
        raise ValidationFailed(f"not an email address Tessera accepts: {problem}")
    return valid
