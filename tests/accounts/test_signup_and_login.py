from __future__ import annotations

from collections.abc import Callable

import pytest
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
    # kept as typed (the email validator lower-cases the domain only)
    assert created.json()["user"]["email"] == "Ada@example.com"
    assert created.json()["user"]["role"] == "annotator"

    login = client.post("/v1/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["token"]["secret"]
    assert token.startswith("tsr_")

    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == "Ada@example.com"
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


# --- issue #22 finding 12: email identity -----------------------------------------------------


@pytest.mark.parametrize(
    "other_form",
    [
        "\uff4batee9ad@example.com",  # fullwidth k: the same address under NFKC
        "KATEE9AD@EXAMPLE.COM",
        "\u212aatee9ad@example.com",  # KELVIN SIGN: K under NFKC, then k
    ],
)
def test_finding_12_another_form_of_a_registered_address_is_taken(
    client: TestClient, other_form: str
) -> None:
    assert signup(client, "katee9ad@example.com").status_code == 201
    taken = signup(client, other_form)
    assert_problem(taken, 409, "email-taken")
    login = client.post("/v1/auth/login", json={"email": other_form, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["email"] == "katee9ad@example.com"


def test_finding_12_a_local_part_mixing_scripts_is_refused(client: TestClient) -> None:
    assert signup(client, "katee9ad@example.com").status_code == 201
    homoglyph = signup(client, "k\u0430tee9ad@example.com")  # a Cyrillic a among Latin letters
    problem = assert_problem(homoglyph, 422)
    assert problem["errors"][0]["pointer"] == "#/email"
    assert "mixes scripts (Cyrillic, Latin)" in problem["errors"][0]["detail"]
    # one script is fine, whichever it is
    assert signup(client, "\u0438\u0432\u0430\u043d@example.com").status_code == 201


def test_finding_12_the_address_is_stored_as_typed_not_altered_by_lower(
    client: TestClient,
) -> None:
    typed = "\u0130stanbul.Ada@example.com"  # capital I with dot above
    created = signup(client, typed)
    assert created.status_code == 201, created.text
    assert created.json()["user"]["email"] == typed
    login = client.post(
        "/v1/auth/login", json={"email": "\u0130STANBUL.ADA@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
