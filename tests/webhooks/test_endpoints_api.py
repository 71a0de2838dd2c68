"""Clients manage their own webhook endpoints, admins see all, annotators get 403; secrets are
shown once and rotate with an overlap during which deliveries are signed with both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.webhooks import catalog, service, signing
from app.webhooks.signing import SecretBox
from tests.outbox import run_due_jobs
from tests.support import Account, assert_problem
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import endpoint_row, register


def test_an_endpoint_is_registered_and_its_secret_shown_once(
    hooks: TestClient, client_account: Account, db: Database, hook_settings: Settings
) -> None:
    created = register(
        hooks,
        client_account,
        "http://127.0.0.1:8999/hook",
        ["task.completed", "job.completed", "task.completed"],
        description="pipeline",
    )
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["task.completed", "job.completed"]
    assert (created["active"], created["client_id"]) == (True, client_account.id)
    shown = hooks.get(
        f"/v1/webhooks/endpoints/{created['id']}", headers=client_account.headers
    ).json()
    assert "secret" not in shown
    listed = hooks.get("/v1/webhooks/endpoints", headers=client_account.headers).json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    stored = endpoint_row(db, created["id"])
    assert created["secret"] not in stored.secret_sealed  # encrypted at rest
    assert (
        SecretBox(hook_settings.resolved_secret_key()).open(stored.secret_sealed)
        == (created["secret"])
    )


def test_unknown_event_types_and_empty_lists_are_422_with_a_pointer(
    hooks: TestClient, client_account: Account
) -> None:
    for types, pointer in ((["job.exploded"], "#/event_types/0"), ([], "#/event_types")):
        response = hooks.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:8999/", "event_types": types},
            headers=client_account.headers,
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["pointer"] == pointer
    test_only = hooks.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:8999/", "event_types": ["webhook.test"]},
        headers=client_account.headers,
    )
    assert_problem(test_only, 422)


def test_clients_see_only_their_own_endpoints_and_deliveries_admins_see_all(
    hooks: TestClient, make_account: Callable[..., Account], admin: Account
) -> None:
    alice, bob = make_account("client"), make_account("client")
    mine = register(hooks, alice, "http://127.0.0.1:8999/a", ["job.completed"])
    theirs = register(hooks, bob, "http://127.0.0.1:8999/b", ["job.completed"])
    assert [
        e["id"] for e in hooks.get("/v1/webhooks/endpoints", headers=alice.headers).json()["items"]
    ] == [mine["id"]]
    for method, path in (
        ("GET", f"/v1/webhooks/endpoints/{theirs['id']}"),
        ("PATCH", f"/v1/webhooks/endpoints/{theirs['id']}"),
        ("DELETE", f"/v1/webhooks/endpoints/{theirs['id']}"),
        ("POST", f"/v1/webhooks/endpoints/{theirs['id']}/test"),
        ("POST", f"/v1/webhooks/endpoints/{theirs['id']}/rotate-secret"),
        ("POST", f"/v1/webhooks/endpoints/{theirs['id']}/replay-dead"),
    ):
        response = hooks.request(method, path, json={}, headers=alice.headers)
        assert_problem(response, 404)
    test = hooks.post(f"/v1/webhooks/endpoints/{theirs['id']}/test", headers=bob.headers).json()
    assert_problem(
        hooks.get(f"/v1/webhooks/deliveries/{test['delivery_id']}", headers=alice.headers), 404
    )
    assert_problem(
        hooks.post(f"/v1/webhooks/deliveries/{test['delivery_id']}/replay", headers=alice.headers),
        404,
    )
    assert hooks.get("/v1/webhooks/deliveries", headers=alice.headers).json()["items"] == []

    everyone = hooks.get("/v1/webhooks/endpoints", headers=admin.headers).json()["items"]
    assert {e["id"] for e in everyone} == {mine["id"], theirs["id"]}
    one = hooks.get("/v1/webhooks/endpoints", params={"client_id": bob.id}, headers=admin.headers)
    assert [e["id"] for e in one.json()["items"]] == [theirs["id"]]
    assert (
        hooks.get(
            f"/v1/webhooks/deliveries/{test['delivery_id']}", headers=admin.headers
        ).status_code
        == 200
    )
    off = hooks.patch(
        f"/v1/webhooks/endpoints/{theirs['id']}", json={"active": False}, headers=admin.headers
    )
    assert off.json()["active"] is False


def test_annotators_get_403_and_admins_cannot_register_for_themselves(
    hooks: TestClient, annotator: Account, admin: Account
) -> None:
    for method, path in (
        ("GET", "/v1/webhooks/endpoints"),
        ("POST", "/v1/webhooks/endpoints"),
        ("GET", "/v1/webhooks/deliveries"),
        ("GET", "/v1/webhooks/event-types"),
    ):
        response = hooks.request(
            method,
            path,
            json={"url": "http://127.0.0.1:8999/", "event_types": ["job.completed"]},
            headers=annotator.headers,
        )
        assert_problem(response, 403)
    response = hooks.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:8999/", "event_types": ["job.completed"]},
        headers=admin.headers,
    )
    assert_problem(response, 403)


def test_an_endpoint_is_changed_and_deleted(
    hooks: TestClient, client_account: Account, db: Database
) -> None:
    created = register(hooks, client_account, "http://127.0.0.1:8999/a", ["job.completed"])
    url = f"/v1/webhooks/endpoints/{created['id']}"
    changed = hooks.patch(
        url,
        json={"url": "http://127.0.0.1:8999/b", "event_types": ["job.paused"], "description": "x"},
        headers=client_account.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["url"], changed.json()["event_types"]) == (
        "http://127.0.0.1:8999/b",
        ["job.paused"],
    )
    with db.read_session() as session:
        assert service.listens(session, client_account.id, "job.paused")  # counts at once
        assert not service.listens(session, client_account.id, "job.completed")
    private = hooks.patch(url, json={"url": "http://10.0.0.1/"}, headers=client_account.headers)
    assert assert_problem(private, 422)["type"] == "/problems/webhook-url-not-allowed"
    hooks.post(f"{url}/test", headers=client_account.headers)
    assert hooks.delete(url, headers=client_account.headers).status_code == 204
    assert_problem(hooks.get(url, headers=client_account.headers), 404)
    assert (
        hooks.get("/v1/webhooks/deliveries", headers=client_account.headers).json()["items"] == []
    )
    with db.read_session() as session:
        assert not service.listens(session, client_account.id, "job.paused")


def test_a_rotated_secret_overlaps_with_the_previous_one_then_replaces_it(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    created = register(hooks, client_account, receiver.url, ["job.paused"])
    old = created["secret"]
    rotated = hooks.post(
        f"/v1/webhooks/endpoints/{created['id']}/rotate-secret",
        json={"overlap_seconds": 3600},
        headers=client_account.headers,
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.json()["previous_secret_expires_at"] is not None

    def send() -> dict[str, str]:
        with db.transaction() as session:
            service.record_event(
                session,
                client_account.id,
                catalog.JOB_PAUSED,
                catalog.job_paused(1, clock.utcnow(), "paused_by_client"),
            )
        run_due_jobs(db, hook_settings, prefix="webhooks.")
        return receiver.received[-1].headers

    during = send()
    assert len(during["webhook-signature"].split()) == 2
    assert signing.verify(old, during, receiver.received[-1].body)
    assert signing.verify(new, during, receiver.received[-1].body)
    clock.travel(timedelta(hours=1, seconds=1))
    after = send()
    assert len(after["webhook-signature"].split()) == 1
    assert signing.verify(new, after, receiver.received[-1].body)
    assert not signing.verify(old, after, receiver.received[-1].body)

    at_once = hooks.post(
        f"/v1/webhooks/endpoints/{created['id']}/rotate-secret",
        json={"overlap_seconds": 0},
        headers=client_account.headers,
    ).json()
    assert at_once["previous_secret_expires_at"] is None
    final = send()
    assert signing.verify(at_once["secret"], final, receiver.received[-1].body)
    assert not signing.verify(new, final, receiver.received[-1].body)


def test_event_types_are_listed_and_documented_in_openapi(
    hooks: TestClient, client_account: Account
) -> None:
    listed = hooks.get("/v1/webhooks/event-types", headers=client_account.headers).json()
    assert {t["type"] for t in listed} == set(catalog.EVENTS)
    assert all(t["version"] == 1 for t in listed)
    assert [t["type"] for t in listed if not t["subscribable"]] == ["webhook.test"]
    spec = hooks.get("/openapi.json").json()
    assert set(spec["webhooks"]) == set(catalog.EVENTS)
    completed = spec["webhooks"]["task.completed"]["post"]
    assert "webhook-signature" in completed["description"]
    schema_ref = completed["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/TaskCompletedEvent")
    assert "TaskCompletedData" in spec["components"]["schemas"]
