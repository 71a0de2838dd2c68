"""Webhooks' problem types: endpoint URLs that cannot be sent to, and deliveries that cannot be
replayed yet."""

from __future__ import annotations

from app.core.errors import Conflict, ValidationFailed


class WebhookUrlNotAllowed(ValidationFailed):
    """422: a webhook URL that resolves to a private, loopback or link-local address."""

    slug, title = "webhook-url-not-allowed", "Webhook URL not allowed"


class WebhookUrlUnresolvable(ValidationFailed):
    """422: a webhook URL whose host name does not resolve (yet)."""

    slug, title = "webhook-url-unresolvable", "Webhook URL does not resolve"


class WebhookEndpointDisabled(Conflict):
    """409: the endpoint is switched off; enable it before sending to it."""

    slug, title = "webhook-endpoint-disabled", "Webhook endpoint disabled"


class WebhookDeliveryPending(Conflict):
    """409: the delivery is still being tried; only finished deliveries can be replayed."""

    slug, title = "webhook-delivery-pending", "Webhook delivery still pending"
