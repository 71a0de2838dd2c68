from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.support import Account, assert_problem


def test_admin_lists_users_with_filters_and_cursor(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    make_account("client")

    page1 = client.get("/v1/admin/users?role=annotator&limit=2", headers=admin.headers).json()
    assert [u["id"] for u in page1["items"]] == [a.id for a in annotators[:2]]
    page2 = client.get(
        f"/v1/admin/users?role=annotator&limit=2&after={page1['next_cursor']}",
        headers=admin.headers,
    ).json()
    assert [u["id"] for u in page2["items"]] == [annotators[2].id]
    assert page2["next_cursor"] is None

    found = client.get(
        f"/v1/admin/users?email={annotators[1].user.email.upper()}", headers=admin.headers
    ).json()["items"]
    assert [u["id"] for u in found] == [annotators[1].id]


def test_non_admins_get_403_problem(
    client: TestClient, annotator: Account, client_account: Account
) -> None:
    for who in (annotator, client_account):
        body = assert_problem(client.get("/v1/admin/users", headers=who.headers), 403)
        assert "admin" in body["detail"]
        assert_problem(
            client.post(
                f"/v1/admin/users/{who.id}/suspend", headers=who.headers, json={"reason": "because"}
            ),
            403,
        )


def test_admin_cannot_suspend_themselves(client: TestClient, admin: Account) -> None:
    assert_problem(
        client.post(
            f"/v1/admin/users/{admin.id}/suspend", headers=admin.headers, json={"reason": "oops"}
        ),
        409,
        "cannot-suspend-self",
    )


def test_suspend_unknown_user_is_404(client: TestClient, admin: Account) -> None:
    assert_problem(
        client.post(
            "/v1/admin/users/999999/suspend", headers=admin.headers, json={"reason": "unknown"}
        ),
        404,
    )


def test_suspended_list_filter(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    bad = make_account()
    make_account()
    client.post(f"/v1/admin/users/{bad.id}/suspend", headers=admin.headers, json={"reason": "spam"})
    items = client.get("/v1/admin/users?status=suspended", headers=admin.headers).json()["items"]
    assert [(u["id"], u["suspended_reason"]) for u in items] == [(bad.id, "spam")]
