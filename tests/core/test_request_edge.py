"""Bad input is refused at the edge, the same way on both databases, never a 500.

Two halves. The route walks read the app's routes and fail when a parameter or a request model
does not use the types of `app.core.inputs`, so a new route is covered the day it is added. The
behaviour tests send what used to reach the database (ids and integers beyond the columns,
naive timestamps, NUL and lone surrogates, numbers JSON and orjson cannot hold, deep nesting)
and check the problem, its pointer, and that nothing was stored.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

import annotated_types
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import func, select

from app.core.db import Database
from app.core.inputs import AWARE, PATH_ID_CHECKS, STORABLE, RequestBody
from app.core.storable import INT64_MAX, INT64_MIN
from app.models import Answer, Job, User
from tests.jobs.factories import active_job, create_job, job_body
from tests.routing.test_claim_and_submit import claim
from tests.support import Account, assert_problem

# --- the route walks -----------------------------------------------------------------------------


def api_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route with a FastAPI dependant, looking inside included routers."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from api_routes(contexts())
        elif getattr(route, "dependant", None) is not None:
            yield route


def parameters(dependant: Any) -> Iterator[tuple[str, Any]]:
    """(where, field) of every path, query and body parameter, dependencies' included."""
    for where in ("path", "query", "body"):
        for field in getattr(dependant, f"{where}_params"):
            yield where, field
    for sub in dependant.dependencies:
        yield from parameters(sub)


def leaves(
    annotation: Any, metadata: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """The leaf types of an annotation, each with the metadata that applies to it (a
    container's own constraints do not apply to its elements)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        yield from leaves(inner, (*metadata, *extra))
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from leaves(arg, metadata)
    elif origin is Literal:
        return
    elif origin in (list, set, frozenset, tuple, dict):
        for arg in typing.get_args(annotation):
            if arg is not Ellipsis:
                yield from leaves(arg)
    else:
        yield annotation, metadata


def constraints(metadata: Iterable[Any]) -> Iterator[Any]:
    for item in metadata:
        if isinstance(item, FieldInfo):  # Field(ge=…, le=…) inside a container's Annotated
            yield from constraints(item.metadata)
        elif isinstance(item, annotated_types.GroupedMetadata):  # Interval(ge=…, le=…)
            yield from item
        else:
            yield item


def bounds(metadata: Iterable[Any]) -> tuple[int | None, int | None]:
    low = high = None
    for part in constraints(metadata):  # the tightest bounds win
        if isinstance(part, annotated_types.Ge | annotated_types.Gt):
            value = part.ge if isinstance(part, annotated_types.Ge) else part.gt + 1
            low = value if low is None else max(low, value)
        elif isinstance(part, annotated_types.Le | annotated_types.Lt):
            value = part.le if isinstance(part, annotated_types.Le) else part.lt - 1
            high = value if high is None else min(high, value)
    return low, high


def checks(metadata: Iterable[Any]) -> list[AfterValidator]:
    return [m for m in metadata if isinstance(m, AfterValidator)]


def leaf_problem(leaf: Any, metadata: tuple[Any, ...], where: str) -> str | None:
    """Why a leaf of a parameter or body field does not use the edge types, or None."""
    if leaf is bool:
        return None
    if leaf is int:
        if where == "path":
            return None if set(checks(metadata)) & set(PATH_ID_CHECKS) else "int, not PathId"
        low, high = bounds(metadata)
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            return f"int bounded by {low}..{high}, not within 64 bits (Int32, Int64, Cursor)"
    if leaf is datetime and AWARE not in checks(metadata):
        return "datetime, not Timestamp"
    if leaf is str and where in ("path", "query") and STORABLE not in checks(metadata):
        return "str, not ParamText"
    return None


def model_problems(model: type[BaseModel], at: str, seen: set[type[BaseModel]]) -> Iterator[str]:
    if model in seen:
        return
    seen.add(model)
    if not issubclass(model, RequestBody):
        yield f"{at}: {model.__name__} does not inherit RequestBody"
    for name, field in model.model_fields.items():
        for leaf, metadata in leaves(field.annotation, tuple(field.metadata)):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                yield from model_problems(leaf, f"{at}.{name}", seen)
            elif problem := leaf_problem(leaf, metadata, "body"):
                yield f"{at}.{name}: {problem}"


def edge_problems(app: FastAPI) -> list[str]:
    problems: list[str] = []
    for route in api_routes(app.routes):
        label = f"{','.join(sorted(route.methods))} {route.path}"
        for where, field in parameters(route.dependant):
            info = field.field_info
            for leaf, metadata in leaves(info.annotation, tuple(info.metadata)):
                if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    problems += model_problems(leaf, f"{label} {where}", set())
                elif problem := leaf_problem(leaf, metadata, where):
                    problems.append(f"{label} {where} {field.name}: {problem}")
    return problems


def test_every_parameter_and_request_model_uses_the_edge_types(app: FastAPI) -> None:
    assert edge_problems(app) == []


class Loose(BaseModel):
    count: int
    when: datetime


class Nested(RequestBody):
    inner: list[Loose]


def test_the_route_walk_finds_parameters_and_models_that_do_not() -> None:
    probe = FastAPI()

    @probe.post("/things/{thing_id}/{name}")
    def thing(thing_id: int, name: str, body: Nested, after: int | None = None) -> None: ...

    problems = edge_problems(probe)
    assert any("path thing_id: int, not PathId" in p for p in problems)
    assert any("path name: str, not ParamText" in p for p in problems)
    assert any("query after: int bounded by None..None" in p for p in problems)
    assert any("Loose does not inherit RequestBody" in p for p in problems)
    assert any("inner.count: int bounded" in p for p in problems)
    assert any("inner.when: datetime, not Timestamp" in p for p in problems)


# --- ids and integers ----------------------------------------------------------------------------

IMPOSSIBLE_IDS = ["99999999999999999999", str(INT64_MAX + 1), "-1"]


def _sample(field: Any) -> str:
    """A value for a path parameter that is not an id."""
    annotation = field.field_info.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return str(next(iter(annotation)).value)
    return "x"


def test_an_id_no_row_can_have_is_a_404_on_every_route_never_a_500(
    app: FastAPI, admin: Account, client_account: Account, annotator: Account
) -> None:
    callers = [admin, client_account, annotator]
    checked = 0
    with TestClient(app) as http:
        for route in api_routes(app.routes):
            ids = [f.name for f in route.dependant.path_params if f.field_info.annotation is int]
            if not ids:
                continue
            others = {f.name: _sample(f) for f in route.dependant.path_params if f.name not in ids}
            for method in route.methods - {"HEAD", "OPTIONS"}:
                for impossible in IMPOSSIBLE_IDS:
                    path = route.path.format(**others, **dict.fromkeys(ids, impossible))
                    statuses = {
                        http.request(method, path, json={}, headers=who.headers).status_code
                        for who in callers
                    }
                    assert 404 in statuses, f"{method} {path}: {statuses}"
                    assert statuses <= {401, 403, 404}, f"{method} {path}: {statuses}"
                    checked += 1
    assert checked >= 60  # the walk really covered the API


def test_a_huge_job_id_is_the_404_of_an_unknown_job(
    client: TestClient, client_account: Account
) -> None:
    response = client.get("/v1/jobs/99999999999999999999", headers=client_account.headers)
    assert_problem(response, 404, "not-found")
    assert_problem(client.get("/v1/jobs/123456", headers=client_account.headers), 404, "not-found")


def test_a_ledger_account_of_the_platform_keeps_owner_zero(
    client: TestClient, admin: Account
) -> None:
    ok = client.get("/v1/admin/ledger/accounts/platform_fees/0", headers=admin.headers)
    assert ok.status_code == 200, ok.text
    assert_problem(
        client.get("/v1/admin/ledger/accounts/platform_fees/-1", headers=admin.headers), 404
    )


def _count(db: Database, model: Any) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_body_integer_beyond_its_column_is_a_422_with_a_pointer(
    client: TestClient, client_account: Account, db: Database
) -> None:
    body = job_body(max_tasks_per_annotator=3_000_000_000)  # INTEGER overflow on PostgreSQL
    problem = assert_problem(
        client.post("/v1/jobs", json=body, headers=client_account.headers), 422
    )
    assert [e["pointer"] for e in problem["errors"]] == ["#/max_tasks_per_annotator"]
    assert _count(db, Job) == 0
    created = client.post(
        "/v1/jobs", json=job_body(max_tasks_per_annotator=2**31 - 1), headers=client_account.headers
    )
    assert created.status_code == 201, created.text


def test_body_ids_beyond_64_bits_are_a_422_with_a_pointer(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = create_job(client, client_account)
    claim_ = client.post("/v1/assignments/next", json={"job_id": 2**63}, headers=annotator.headers)
    assert assert_problem(claim_, 422)["errors"][0]["pointer"] == "#/job_id"
    reject = client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [1, 10**20], "reason": "not good"},
        headers=client_account.headers,
    )
    assert assert_problem(reject, 422)["errors"][0]["pointer"] == "#/assignment_ids/1"


@pytest.mark.parametrize(
    "query",
    [
        "/v1/jobs?after=99999999999999999999",
        "/v1/webhooks/deliveries?endpoint_id=99999999999999999999",
        "/v1/admin/payouts?annotator_id=-99999999999999999999",
    ],
)
def test_query_integers_beyond_64_bits_are_a_422_naming_the_parameter(
    client: TestClient, admin: Account, query: str
) -> None:
    problem = assert_problem(client.get(query, headers=admin.headers), 422)
    name = query.split("?")[1].split("=")[0]
    assert problem["errors"][0]["in"] == "query"
    assert problem["errors"][0]["parameter"] == name


# --- timestamps ----------------------------------------------------------------------------------


def test_timestamps_without_a_time_zone_are_a_422_everywhere(
    client: TestClient, client_account: Account, admin: Account, annotator: Account, db: Database
) -> None:
    naive = "2031-01-01T12:00:00"
    job = client.post("/v1/jobs", json=job_body(deadline=naive), headers=client_account.headers)
    problem = assert_problem(job, 422)
    assert problem["errors"][0] == {
        "detail": "timestamp needs a time zone, e.g. Z or +02:00",
        "code": "timezone_aware",
        "pointer": "#/deadline",
    }
    assert _count(db, Job) == 0
    job_id = create_job(client, client_account, deadline=naive + "Z")
    patch = client.patch(
        f"/v1/jobs/{job_id}", json={"deadline": naive}, headers=client_account.headers
    )
    assert assert_problem(patch, 422)["errors"][0]["pointer"] == "#/deadline"
    ban = client.post(
        f"/v1/jobs/{job_id}/bans",
        json={"annotator_id": annotator.id, "until": naive, "reason": "too fast"},
        headers=client_account.headers,
    )
    assert assert_problem(ban, 422)["errors"][0]["pointer"] == "#/until"
    skill = client.post(
        "/v1/admin/skills", json={"slug": "ner-en", "name": "NER"}, headers=admin.headers
    )
    assert skill.status_code == 201, skill.text
    grant = client.post(
        f"/v1/admin/annotators/{annotator.id}/skills",
        json={"skill": "ner-en", "reason": "passed offline", "expires_at": naive},
        headers=admin.headers,
    )
    assert assert_problem(grant, 422)["errors"][0]["pointer"] == "#/expires_at"
    aware = client.post(
        f"/v1/jobs/{job_id}/bans",
        json={"annotator_id": annotator.id, "until": naive + "+02:00", "reason": "too fast"},
        headers=client_account.headers,
    )
    assert aware.status_code == 201, aware.text


# --- text both databases can store ---------------------------------------------------------------

NUL = "bad\u0000text"


def _post_raw(client: TestClient, path: str, raw: str, who: Account | None) -> Any:
    headers = {"Content-Type": "application/json", **(who.headers if who else {})}
    return client.post(path, content=raw.encode(), headers=headers)


def test_nul_in_any_body_string_is_a_422_with_a_pointer_and_nothing_is_stored(
    client: TestClient, client_account: Account, admin: Account, db: Database
) -> None:
    cases: list[tuple[str, dict[str, Any], Account | None, str]] = [
        ("/v1/jobs", job_body(title=NUL), client_account, "#/title"),
        ("/v1/jobs", job_body(instructions=NUL), client_account, "#/instructions"),
        (
            "/v1/auth/signup",
            {
                "email": "new@example.com",
                "password": "long enough password",
                "display_name": NUL,
                "role": "annotator",
            },
            None,
            "#/display_name",
        ),
        (
            "/v1/webhooks/endpoints",
            {"url": "https://example.com/" + NUL, "event_types": ["job.completed"]},
            client_account,
            "#/url",
        ),
        (
            "/v1/qualification-tests",
            {
                "title": "NER test",
                "label_schema": {"controls": []},
                "skill": "ner-en",
                "questions": [{"payload": {"text": NUL}, "answer_key": {}}],
            },
            client_account,
            "#/questions/0/payload/text",
        ),
        ("/v1/admin/skills", {"slug": "ner-en", "name": "NER", NUL: 1}, admin, f"#/{NUL}"),
    ]
    users, jobs = _count(db, User), _count(db, Job)
    for path, body, who, pointer in cases:
        response = client.post(path, json=body, headers=who.headers if who else {})
        problem = assert_problem(response, 422, "validation-failed")
        assert [e["pointer"] for e in problem["errors"]] == [pointer], path
        assert "U+0000" in problem["errors"][0]["detail"]
    assert (_count(db, User), _count(db, Job)) == (users, jobs)


def test_an_unpaired_surrogate_is_a_422_in_typed_and_free_form_fields(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    lone = '"\\ud800 alone"'
    job = _post_raw(
        client,
        "/v1/jobs",
        json.dumps(job_body(title="TITLE")).replace('"TITLE"', lone),
        client_account,
    )
    assert assert_problem(job, 422)["errors"][0]["pointer"] == "#/title"
    active_job(client, client_account)
    [assignment] = claim(client, annotator)
    submit = _post_raw(
        client,
        f"/v1/assignments/{assignment['id']}/submit",
        '{"answers": [{"sentiment": ' + lone + "}]}",
        annotator,
    )
    problem = assert_problem(submit, 422)
    assert problem["errors"][0]["pointer"] == "#/answers/0/sentiment"
    assert "surrogate" in problem["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/v1/admin/users?email=a%00b", "admin"),
        ("/v1/runs?kind=a%00b", "admin"),
        ("/v1/webhooks/deliveries?event_type=a%00b", "client"),
    ],
)
def test_nul_in_a_query_string_is_a_422_naming_the_parameter(
    client: TestClient, admin: Account, client_account: Account, path: str, who: str
) -> None:
    caller = admin if who == "admin" else client_account
    problem = assert_problem(client.get(path, headers=caller.headers), 422)
    assert problem["errors"][0]["in"] == "query"
    assert problem["errors"][0]["code"] == "unstorable_text"


def test_nul_in_a_path_string_is_a_422(client: TestClient, admin: Account) -> None:
    response = client.patch("/v1/admin/skills/a%00b", json={"name": "x"}, headers=admin.headers)
    problem = assert_problem(response, 422)
    assert (problem["errors"][0]["in"], problem["errors"][0]["parameter"]) == ("path", "slug")


# --- numbers in answers and deep nesting ---------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("123456789012345678901234", "64-bit"),
        (str(INT64_MIN - 1), "64-bit"),
        ("1e400", "finite"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_a_number_json_and_the_answer_digest_cannot_hold_is_a_422_and_nothing_is_stored(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    number: str,
    reason: str,
) -> None:
    active_job(client, client_account)
    [assignment] = claim(client, annotator)
    response = _post_raw(
        client,
        f"/v1/assignments/{assignment['id']}/submit",
        '{"answers": [{"sentiment": "positive", "extra": [' + number + "]}]}",
        annotator,
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["pointer"] == "#/answers/0/extra/0"
    assert reason in problem["errors"][0]["detail"]
    assert _count(db, Answer) == 0


def test_the_largest_64_bit_integer_is_stored_and_exported_exactly(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    schema = {"controls": [{"name": "score", "type": "number", "integer": True}]}
    job_id = active_job(client, client_account, label_schema=schema, overlap={"min": 1})
    [assignment] = claim(client, annotator)
    submitted = client.post(
        f"/v1/assignments/{assignment['id']}/submit",
        json={"answers": [{"score": INT64_MAX}]},
        headers=annotator.headers,
    )
    assert submitted.status_code == 200, submitted.text
    again = client.post(  # the digest of the same answers again: idempotent
        f"/v1/assignments/{assignment['id']}/submit",
        json={"answers": [{"score": INT64_MAX}]},
        headers=annotator.headers,
    )
    assert again.status_code == 200, again.text
    export = client.get(f"/v1/jobs/{job_id}/export", headers=client_account.headers)
    [record] = [r for r in map(json.loads, export.text.splitlines()) if r["answers"]]
    assert record["answers"][0]["answer"] == {"score": INT64_MAX}


def test_a_body_nested_100000_levels_is_a_422_not_a_500(
    client: TestClient, client_account: Account
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    problem = assert_problem(_post_raw(client, "/v1/jobs", deep, client_account), 422)
    assert problem["errors"][0]["pointer"] == "#"
    nested_answer = '{"answers": [{"sentiment": ' + deep + "}]}"
    response = _post_raw(client, "/v1/assignments/1/submit", nested_answer, client_account)
    assert assert_problem(response, 422)["errors"][0]["code"] == "too_deep"


def test_nesting_the_parser_reads_but_deeper_than_64_levels_is_a_422_with_a_pointer(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account)
    [assignment] = claim(client, annotator)
    levels = 300  # read by json.loads, too deep for orjson (a 500 in the digest before)
    raw = '{"answers": [{"sentiment": "positive", "x": ' + "[" * levels + "]" * levels + "}]}"
    response = _post_raw(client, f"/v1/assignments/{assignment['id']}/submit", raw, annotator)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["pointer"].startswith("#/answers/0/x/0/0")
    assert "nested deeper than 64" in problem["errors"][0]["detail"]


def test_a_body_that_is_not_utf8_is_a_422(client: TestClient, client_account: Account) -> None:
    response = client.post(
        "/v1/jobs",
        content=b'{"title": "\xff"}',
        headers={**client_account.headers, "Content-Type": "application/json"},
    )
    assert assert_problem(response, 422)["errors"][0]["code"] == "json_invalid"
