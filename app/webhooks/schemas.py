"""Request and response bodies for webhook endpoints and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import RequestBody
from app.models.webhooks import DeliveryStatus
from app.webhooks.catalog import EventType

MAX_OVERLAP_SECONDS = 7 * 86_400


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; verify the signature instead")
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return value


Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    AfterValidator(_http_url),
]
EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=20, description="Event types this endpoint receives"),
    AfterValidator(lambda types: list(dict.fromkeys(types))),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class EndpointCreate(RequestBody):
    url: Url
    event_types: EventTypes
    description: Description = ""


class EndpointUpdate(RequestBody):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    active: bool | None = Field(
        default=None, description="false switches the endpoint off; true switches it back on"
    )


class SecretRotation(RequestBody):
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the previous secret stays valid (deliveries are signed with both)",
    )


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint was switched off automatically (410 Gone, or failing for "
        "TESSERA_WEBHOOK_DISABLE_AFTER_HOURS); null when on, or switched off by hand"
    )
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="Start of the current run of failures")
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime | None


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_…): shown this once, keep it")


class EventOut(BaseModel):
    id: str = Field(description="Event id, the `webhook-id` header")
    type: str
    version: int
    job_id: int | None
    created_at: datetime


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    event: EventOut
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    succeeded_at: datetime | None
    dead_at: datetime | None
    created_at: datetime


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None = Field(description="The start of what the endpoint answered")


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="The body sent (the event envelope)")
    attempt_log: list[AttemptOut]


class Replayed(BaseModel):
    replayed: int = Field(description="Deliveries queued for another round of attempts")


class TestSent(BaseModel):
    event_id: str
    delivery_id: int


class EventTypeOut(BaseModel):
    type: str
    version: int
    summary: str
    description: str
    subscribable: bool
