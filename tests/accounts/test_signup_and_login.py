from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from app.core.settings import Settings, SignupPolicy
from app.main import create_app
from tests.support import Account, assert_problem

PASSWORD = "correct horse battery"


def signup(
    client: TestClient, email: str = "Ada@Example.com", role: str = "annotator", **extra: object
) -> object:
    body = {"email": email, "password": PASSWORD, "display_name": "Ada", "role": role, **extra}
    return client.post("/v1/auth/signup", json=body)


def test_signup_then_login_then_me(client: TestClient) -> None:
    created = signup(client)
    assert created.status_code == 201, created.text
    assert created.json()["user"]["email"] == "ada@example.com"
    assert created.json()["user"]["role"] == "annotator"

    login = client.post("/v1/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["token"]["secret"]
    assert token.startswith("tsr_")

    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    assert "password_hash" not in me.json()


def test_the_token_returned_by_signup_works(client: TestClient) -> None:
    token = signup(client, role="client").json()["token"]["secret"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "client"


def test_wrong_password_and_unknown_email_both_401(client: TestClient) -> None:
    signup(client)
    wrong = client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "nope"})
    unknown = client.post("/v1/auth/login", json={"email": "bob@example.com", "password": "x"})
    assert assert_problem(wrong, 401)["detail"] == assert_problem(unknown, 401)["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_duplicate_email_is_409_case_insensitively(client: TestClient) -> None:
    assert signup(client, "ada@example.com").status_code == 201
    body = assert_problem(signup(client, "ADA@EXAMPLE.COM"), 409, "email-taken")
    assert body["errors"][0]["pointer"] == "#/email"


def test_signup_cannot_create_an_admin(client: TestClient) -> None:
    body = assert_problem(signup(client, role="admin"), 422)
    assert body["errors"][0]["pointer"] == "#/role"


def test_short_password_is_rejected_with_pointer(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/signup",
        json={"email": "a@example.com", "password": "short", "display_name": "A", "role": "client"},
    )
    assert assert_problem(response, 422)["errors"][0]["pointer"] == "#/password"


def test_suspended_user_cannot_log_in_or_use_tokens(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    user = make_account("annotator", password=PASSWORD)
    suspended = client.post(
        f"/v1/admin/users/{user.id}/suspend",
        headers=admin.headers,
        json={"reason": "gold failures"},
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"

    body = assert_problem(client.get("/v1/me", headers=user.headers), 403, "account-suspended")
    assert body["reason"] == "gold failures"
    assert_problem(
        client.post("/v1/auth/login", json={"email": user.user.email, "password": PASSWORD}),
        403,
        "account-suspended",
    )

    client.post(f"/v1/admin/users/{user.id}/reactivate", headers=admin.headers)
    assert client.get("/v1/me", headers=user.headers).status_code == 200


def test_closed_signup_is_403(settings: Settings, db: object) -> None:
    closed = settings.model_copy(update={"signup_policy": SignupPolicy.closed})
    with TestClient(create_app(closed, db)) as client:  # type: ignore[arg-type]
        assert_problem(signup(client), 403, "signup-closed")
        assert (
            client.post(
                "/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
            ).status_code
            == 401
        )


def test_invite_policy_needs_a_matching_unused_invite(
    settings: Settings, db: object, admin: Account
) -> None:
    invite_only = settings.model_copy(update={"signup_policy": SignupPolicy.invite})
    with TestClient(create_app(invite_only, db)) as client:  # type: ignore[arg-type]
        missing = assert_problem(signup(client), 403, "invite-required")
        assert missing["errors"][0]["pointer"] == "#/invite_code"

        made = client.post(
            "/v1/admin/invites",
            headers=admin.headers,
            json={"role": "annotator", "email": "ada@example.com"},
        )
        assert made.status_code == 201, made.text
        code = made.json()["code"]

        assert_problem(signup(client, "eve@example.com", invite_code=code), 403, "invite-invalid")
        assert_problem(signup(client, role="client", invite_code=code), 403, "invite-invalid")
        assert signup(client, invite_code=code).status_code == 201
        assert_problem(
            signup(client, "ada2@example.com", invite_code=code), 403, "invite-invalid"
        )  # used once already

        listed = client.get("/v1/admin/invites", headers=admin.headers).json()["items"]
        assert listed[0]["used_at"] is not None
        assert "code" not in listed[0]
