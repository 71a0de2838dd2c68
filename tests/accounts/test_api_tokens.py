from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from app.core.db import Database
from app.models import ApiToken, Base
from tests.support import Account, assert_problem


def test_create_list_and_revoke_tokens(client: TestClient, annotator: Account) -> None:
    created = client.post("/v1/me/tokens", headers=annotator.headers, json={"name": "laptop"})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    new_headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/me", headers=new_headers).status_code == 200

    listed = client.get("/v1/me/tokens", headers=annotator.headers).json()
    assert {t["name"] for t in listed} == {"test", "laptop"}
    assert all("secret" not in t for t in listed)

    token_id = created.json()["id"]
    assert client.delete(f"/v1/me/tokens/{token_id}", headers=annotator.headers).status_code == 204
    body = assert_problem(client.get("/v1/me", headers=new_headers), 401)
    assert "revoked" in body["detail"]
    assert client.get("/v1/me", headers=annotator.headers).status_code == 200


def test_cannot_revoke_someone_elses_token(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    alice, bob = make_account(), make_account()
    bobs = client.get("/v1/me/tokens", headers=bob.headers).json()[0]["id"]
    assert_problem(client.delete(f"/v1/me/tokens/{bobs}", headers=alice.headers), 404)
    assert client.get("/v1/me", headers=bob.headers).status_code == 200


def test_expired_token_is_401(client: TestClient, annotator: Account, db: Database) -> None:
    with db.transaction() as session:
        token = session.scalars(select(ApiToken).where(ApiToken.user_id == annotator.id)).one()
        token.expires_at = token.created_at - timedelta(seconds=1)
    assert (
        "expired" in assert_problem(client.get("/v1/me", headers=annotator.headers), 401)["detail"]
    )


def test_missing_or_garbage_token_is_401(client: TestClient) -> None:
    assert_problem(client.get("/v1/me"), 401)
    assert_problem(client.get("/v1/me", headers={"Authorization": "Bearer tsr_nonsense"}), 401)
    assert_problem(client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401)


def test_last_used_is_recorded(client: TestClient, annotator: Account, db: Database) -> None:
    client.get("/v1/me", headers=annotator.headers)
    with db.read_session() as session:
        used = session.scalars(
            select(ApiToken.last_used_at).where(ApiToken.user_id == annotator.id)
        ).one()
    assert used is not None


def test_token_secrets_and_passwords_are_never_stored_in_clear(
    client: TestClient, db: Database
) -> None:
    password = "a long and secret password"
    signed = client.post(
        "/v1/auth/signup",
        json={
            "email": "c@example.com",
            "password": password,
            "display_name": "C",
            "role": "client",
        },
    )
    extra = client.post(
        "/v1/me/tokens",
        json={"name": "ci"},
        headers={"Authorization": f"Bearer {signed.json()['token']['secret']}"},
    )
    secrets = [signed.json()["token"]["secret"], extra.json()["secret"]]

    dump = []
    with db.read_session() as session:
        conn = session.connection()
        for table in inspect(conn).get_table_names():
            if table in Base.metadata.tables:
                dump.extend(str(row) for row in conn.execute(text(f"SELECT * FROM {table}")))
    stored = "\n".join(dump)
    for secret in secrets:
        assert secret not in stored
        assert secret[len("tsr_") :] not in stored
    assert password not in stored
    assert "$argon2id$" in stored


def test_the_hot_path_stops_a_revoked_or_suspended_token_at_once(
    client: TestClient, annotator: Account, admin: Account
) -> None:
    """The annotators' hot path keeps what a token resolves to for a few seconds (on
    PostgreSQL); a revoke or suspension through this process must still count at once."""
    created = client.post("/v1/me/tokens", headers=annotator.headers, json={"name": "phone"})
    phone = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert client.post("/v1/assignments/next", headers=phone).status_code == 200  # now cached
    client.delete(f"/v1/me/tokens/{created.json()['id']}", headers=annotator.headers)
    assert (
        "revoked"
        in assert_problem(client.post("/v1/assignments/next", headers=phone), 401)["detail"]
    )

    assert client.post("/v1/assignments/next", headers=annotator.headers).status_code == 200
    suspended = client.post(
        f"/v1/admin/users/{annotator.id}/suspend", headers=admin.headers, json={"reason": "spam"}
    )
    assert suspended.status_code == 200, suspended.text
    assert_problem(client.post("/v1/assignments/next", headers=annotator.headers), 403)


def test_the_hot_path_checks_expiry_of_a_cached_token(
    client: TestClient, annotator: Account, db: Database
) -> None:
    assert client.post("/v1/assignments/next", headers=annotator.headers).status_code == 200
    with db.transaction() as session:
        token = session.scalars(select(ApiToken).where(ApiToken.user_id == annotator.id)).one()
        token.expires_at = token.created_at - timedelta(seconds=1)
    body = assert_problem(client.post("/v1/assignments/next", headers=annotator.headers), 401)
    assert "expired" in body["detail"]
