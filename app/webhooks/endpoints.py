"""HTTP for webhooks: clients manage their endpoints and deliveries (admins: everyone's;
annotators: 403), and the OpenAPI `webhooks` section documents every event we send."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.inputs import Int64, ParamText, PathId
from app.core.pagination import Page, PageParams, page_params
from app.core.security import ClientPrincipal, DbSession, Principal, ReadSession, require_role
from app.core.settings import Settings
from app.models.accounts import Role
from app.models.webhooks import DeliveryStatus
from app.webhooks import catalog, schemas, service
from app.webhooks.errors import (
    WebhookDeliveryPending,
    WebhookEndpointDisabled,
    WebhookUrlNotAllowed,
    WebhookUrlUnresolvable,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Paging = Annotated[PageParams, Depends(page_params)]
ClientOnly = Annotated[Principal, Depends(require_role(Role.client))]

_URL_PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Invalid body (`validation-failed`), or a URL resolving to a private "
        f"address (`{WebhookUrlNotAllowed.slug}`) or to nothing "
        f"(`{WebhookUrlUnresolvable.slug}`)"
    }
}
_DISABLED: dict[int | str, dict[str, Any]] = {
    409: {"description": f"The endpoint is switched off (`{WebhookEndpointDisabled.slug}`)"}
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _with_secret(endpoint: Any, secret: str) -> schemas.EndpointWithSecret:
    return schemas.EndpointWithSecret(
        **schemas.EndpointOut.model_validate(endpoint).model_dump(), secret=secret
    )


@router.get("/event-types", response_model=list[schemas.EventTypeOut])
def event_types(principal: ClientPrincipal) -> list[schemas.EventTypeOut]:
    """The events you can subscribe to, with their payload versions (payloads are documented
    in the OpenAPI `webhooks` section)."""
    return [
        schemas.EventTypeOut(
            type=spec.name,
            version=spec.version,
            summary=spec.summary,
            description=spec.description,
            subscribable=spec.name != catalog.WEBHOOK_TEST,
        )
        for spec in catalog.EVENTS.values()
    ]


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.EndpointWithSecret,
    responses=_URL_PROBLEMS,
)
def create_endpoint(
    body: schemas.EndpointCreate, client: ClientOnly, session: DbSession, request: Request
) -> schemas.EndpointWithSecret:
    """Register an endpoint. The response carries its signing secret, shown this once."""
    endpoint, secret = service.create_endpoint(session, _settings(request), client, body)
    session.commit()
    return _with_secret(endpoint, secret)


@router.get("/endpoints", response_model=Page[schemas.EndpointOut])
def list_endpoints(
    principal: ClientPrincipal,
    session: ReadSession,
    paging: Paging,
    client_id: Annotated[Int64 | None, Query(description="Admins: one client's endpoints")] = None,
) -> Page[schemas.EndpointOut]:
    """Your endpoints (admins: everyone's)."""
    rows, cursor = service.list_endpoints(session, principal, paging, client_id)
    return Page(items=[schemas.EndpointOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/endpoints/{endpoint_id}", response_model=schemas.EndpointOut)
def get_endpoint(
    endpoint_id: PathId, principal: ClientPrincipal, session: ReadSession
) -> schemas.EndpointOut:
    """One endpoint; `active: false` with `disabled_reason` when it was switched off."""
    return schemas.EndpointOut.model_validate(service.get_endpoint(session, principal, endpoint_id))


@router.patch(
    "/endpoints/{endpoint_id}", response_model=schemas.EndpointOut, responses=_URL_PROBLEMS
)
def update_endpoint(
    endpoint_id: PathId,
    body: schemas.EndpointUpdate,
    principal: ClientPrincipal,
    session: DbSession,
    request: Request,
) -> schemas.EndpointOut:
    """Change the URL, event types or description; `active` switches it off or back on."""
    endpoint = service.get_endpoint(session, principal, endpoint_id, lock=True)
    service.update_endpoint(session, _settings(request), endpoint, body)
    session.commit()
    return schemas.EndpointOut.model_validate(endpoint)


@router.delete("/endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(
    endpoint_id: PathId, principal: ClientPrincipal, session: DbSession
) -> Response:
    """Delete the endpoint, its deliveries and their history."""
    service.delete_endpoint(
        session, service.get_endpoint(session, principal, endpoint_id, lock=True)
    )
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=schemas.EndpointWithSecret)
def rotate_secret(
    endpoint_id: PathId,
    principal: ClientPrincipal,
    session: DbSession,
    request: Request,
    body: schemas.SecretRotation | None = None,
) -> schemas.EndpointWithSecret:
    """A new signing secret (shown this once). The previous one stays valid for
    `overlap_seconds` (default a day): deliveries carry a signature with each meanwhile."""
    overlap = timedelta(seconds=(body or schemas.SecretRotation()).overlap_seconds)
    endpoint = service.get_endpoint(session, principal, endpoint_id, lock=True)
    secret = service.rotate_secret(session, _settings(request), endpoint, overlap)
    session.commit()
    return _with_secret(endpoint, secret)


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.TestSent,
    responses=_DISABLED,
)
def send_test(
    endpoint_id: PathId, principal: ClientPrincipal, session: DbSession
) -> schemas.TestSent:
    """Send a `webhook.test` event to this endpoint; follow it at
    `GET /v1/webhooks/deliveries/{delivery_id}`."""
    event, row = service.send_test(session, service.get_endpoint(session, principal, endpoint_id))
    session.commit()
    return schemas.TestSent(event_id=event.public_id, delivery_id=row.id)


@router.post(
    "/endpoints/{endpoint_id}/replay-dead",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Replayed,
    responses=_DISABLED,
)
def replay_dead(
    endpoint_id: PathId, principal: ClientPrincipal, session: DbSession
) -> schemas.Replayed:
    """Send every dead-lettered delivery of the endpoint again (same event ids, a fresh retry
    schedule each)."""
    replayed = service.replay_dead(
        session, service.get_endpoint(session, principal, endpoint_id, lock=True)
    )
    session.commit()
    return schemas.Replayed(replayed=replayed)


@router.get("/deliveries", response_model=Page[schemas.DeliveryOut])
def list_deliveries(
    principal: ClientPrincipal,
    session: ReadSession,
    paging: Paging,
    endpoint_id: Int64 | None = None,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: Annotated[ParamText | None, Query(max_length=64)] = None,
) -> Page[schemas.DeliveryOut]:
    """Deliveries to your endpoints, oldest first: status, attempts, last response code,
    latency and error."""
    rows, cursor = service.list_deliveries(
        session, principal, paging, endpoint_id=endpoint_id, status=status_, event_type=event_type
    )
    return Page(items=[r.out() for r in rows], next_cursor=cursor)


@router.get("/deliveries/{delivery_id}", response_model=schemas.DeliveryDetail)
def get_delivery(
    delivery_id: PathId, principal: ClientPrincipal, session: ReadSession
) -> schemas.DeliveryDetail:
    """One delivery with the body sent and every attempt (time, status code, latency, error,
    the start of the response)."""
    view = service.get_delivery(session, principal, delivery_id)
    return view.detail(service.attempt_log(session, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.DeliveryOut,
    responses={
        409: {
            "description": f"Still pending (`{WebhookDeliveryPending.slug}`) or the endpoint is "
            f"switched off (`{WebhookEndpointDisabled.slug}`)"
        }
    },
)
def replay_delivery(
    delivery_id: PathId, principal: ClientPrincipal, session: DbSession
) -> schemas.DeliveryOut:
    """Send a dead (or succeeded) delivery again, with the same event id and a fresh retry
    schedule."""
    view = service.replay_delivery(session, principal, delivery_id)
    session.commit()
    return view.out()


# --- the OpenAPI `webhooks` section: what we send -------------------------------------------------

HEADERS_DOC = """

Sent as `POST` with `Content-Type: application/json` and the Standard Webhooks headers:
`webhook-id` (the event id, the same on every retry and replay: dedupe on it),
`webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
(`v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the key in
your `whsec_` secret; several space-separated during a secret rotation). Answer 2xx within the
timeout; anything else is retried with exponential backoff for 24 hours, 410 switches the
endpoint off."""

events = APIRouter()


def _doc(event_type: str) -> dict[str, Any]:
    spec = catalog.EVENTS[event_type]
    return {"summary": spec.summary, "description": spec.description + HEADERS_DOC}


@events.post(catalog.TASK_COMPLETED, **_doc(catalog.TASK_COMPLETED))
def task_completed(body: catalog.TaskCompletedEvent) -> None: ...


@events.post(catalog.ASSIGNMENT_SUBMITTED, **_doc(catalog.ASSIGNMENT_SUBMITTED))
def assignment_submitted(body: catalog.AssignmentSubmittedEvent) -> None: ...


@events.post(catalog.JOB_PROGRESS, **_doc(catalog.JOB_PROGRESS))
def job_progress(body: catalog.JobProgressEvent) -> None: ...


@events.post(catalog.JOB_COMPLETED, **_doc(catalog.JOB_COMPLETED))
def job_completed(body: catalog.JobCompletedEvent) -> None: ...


@events.post(catalog.JOB_PAUSED, **_doc(catalog.JOB_PAUSED))
def job_paused(body: catalog.JobPausedEvent) -> None: ...


@events.post(catalog.IMPORT_FINISHED, **_doc(catalog.IMPORT_FINISHED))
def import_finished(body: catalog.ImportFinishedEvent) -> None: ...


@events.post(catalog.EXPORT_READY, **_doc(catalog.EXPORT_READY))
def export_ready(body: catalog.ExportReadyEvent) -> None: ...


@events.post(catalog.WEBHOOK_TEST, **_doc(catalog.WEBHOOK_TEST))
def webhook_test(body: catalog.WebhookTestEvent) -> None: ...
