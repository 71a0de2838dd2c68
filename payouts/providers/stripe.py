"""Stripe, through its Python SDK: the only module that imports `stripe`.

The client is a `stripe.StripeClient` of its own (no module-level API key), over the SDK's httpx
client, with the SDK's telemetry off and its API base taken from TESSERA_STRIPE_API_BASE when
set (tests point it at a fake Stripe on 127.0.0.1). Nothing Stripe-typed leaves this module:
callers get small dataclasses.

Transfers carry the idempotency key `payout-<payout id>` (Stripe replays the first answer for the
same key for at least 24 hours) and the transfer group `payout-<payout id>` plus the payout id in
their metadata, by which `find_transfer` finds one after a crash. `send_transfer` sorts what can
happen into three outcomes: paid (Stripe made the transfer), failed (Stripe refused it: nothing
was moved) and unknown (no answer, or one that does not say: reconciliation looks it up).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import stripe

from app.core.money import MICROS_PER_CENT
from app.core.settings import PayoutsProvider, Settings
from payouts.errors import SignatureInvalid

_telemetry_lock = threading.Lock()


class StripeUnavailable(Exception):
    """Stripe did not do what was asked (no answer, an error, bad credentials). Endpoints
    answer 503; background jobs let it propagate, so the runner retries them."""


@contextmanager
def _asking_stripe(what: str) -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe could not {what}: {_reason(exc)}") from exc


@dataclass(frozen=True)
class TransferOutcome:
    status: Literal["paid", "failed", "unknown"]
    transfer_id: str | None = None
    reason: str | None = None
    amount_micros: int | None = None
    destination: str | None = None


@dataclass(frozen=True)
class ConnectedAccount:
    id: str
    details_submitted: bool
    transfers_enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class VerifiedEvent:
    id: str
    type: str
    created: datetime
    livemode: bool
    payload: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        data = self.payload.get("data") or {}
        obj = data.get("object") if isinstance(data, dict) else None
        return obj if isinstance(obj, dict) else {}


def payout_key(payout_id: int) -> str:
    """The idempotency key and transfer group of a payout's transfer."""
    return f"payout-{payout_id}"


class StripeGateway:
    """What Tessera asks of Stripe."""

    def __init__(self, settings: Settings) -> None:
        if settings.stripe_api_key is None:
            raise RuntimeError("the stripe provider needs TESSERA_STRIPE_API_KEY")
        with _telemetry_lock:
            stripe.enable_telemetry = False
        base = settings.stripe_api_base
        self.currency = settings.currency
        self.country = settings.stripe_connect_country
        self._webhook_secret = (
            settings.stripe_webhook_secret.get_secret_value()
            if settings.stripe_webhook_secret is not None
            else None
        )
        self._client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": base, "connect": base} if base else None,
            http_client=stripe.HTTPXClient(
                timeout=settings.stripe_timeout_seconds, allow_sync_methods=True
            ),
            # Retries of a POST reuse its idempotency key (ours), so they are safe.
            max_network_retries=2,
        )

    # --- webhooks ---------------------------------------------------------------------------

    def verify_event(self, payload: bytes, signature: str | None) -> VerifiedEvent:
        """The event in a webhook body whose `Stripe-Signature` verifies with the webhook
        secret and was signed in the last 5 minutes (`SignatureInvalid` otherwise, and for a
        body that is not an event)."""
        if self._webhook_secret is None:
            raise SignatureInvalid("No Stripe webhook secret is configured")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature,
                self._webhook_secret,
                tolerance=stripe.Webhook.DEFAULT_TOLERANCE,  # older signatures are replays
            )
            body = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise SignatureInvalid(f"The Stripe signature does not verify: {exc}") from None
        if not isinstance(body, dict) or body.get("object") != "event" or "id" not in body:
            raise SignatureInvalid("The body is not a Stripe event")
        return VerifiedEvent(
            id=str(body["id"]),
            type=str(body.get("type", "")),
            created=datetime.fromtimestamp(int(body.get("created", 0)), UTC),
            livemode=bool(body.get("livemode", False)),
            payload=body,
        )

    # --- funding ------------------------------------------------------------------------------

    def create_checkout_session(
        self,
        *,
        funding_id: int,
        client_id: int,
        amount_micros: int,
        success_url: str,
        cancel_url: str,
    ) -> CheckoutSession:
        """A Checkout Session for a one-off payment of `amount_micros` (whole cents) to the
        client's balance; the funding id travels in the metadata of the session and of its
        payment intent."""
        metadata = {"funding_id": str(funding_id), "client_id": str(client_id)}
        with _asking_stripe("open a checkout session"):
            session = self._create_session(
                funding_id, amount_micros, metadata, success_url, cancel_url
            )
        return CheckoutSession(id=session.id, url=session.url or "")

    def _create_session(
        self,
        funding_id: int,
        amount_micros: int,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
    ) -> stripe.checkout.Session:
        return self._client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "client_reference_id": str(funding_id),
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": self.currency,
                            "unit_amount": amount_micros // MICROS_PER_CENT,
                            "product_data": {"name": "Tessera balance"},
                        },
                    }
                ],
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata},
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            {"idempotency_key": f"funding-{funding_id}"},
        )

    # --- connected accounts ---------------------------------------------------------------

    def create_express_account(self, *, annotator_id: int, email: str) -> ConnectedAccount:
        with _asking_stripe("create a connected account"):
            return _connected(self._new_account(annotator_id, email))

    def _new_account(self, annotator_id: int, email: str) -> stripe.Account:
        return self._client.v1.accounts.create(
            {
                "type": "express",
                "country": self.country,
                "email": email,
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"annotator_id": str(annotator_id)},
            },
            {"idempotency_key": f"express-account-{annotator_id}"},
        )

    def onboarding_link(self, account_id: str, *, return_url: str, refresh_url: str) -> str:
        with _asking_stripe("create an onboarding link"):
            link = self._client.v1.account_links.create(
                {
                    "account": account_id,
                    "type": "account_onboarding",
                    "return_url": return_url,
                    "refresh_url": refresh_url,
                }
            )
        return str(link.url)

    def retrieve_account(self, account_id: str) -> ConnectedAccount:
        with _asking_stripe("read a connected account"):
            return _connected(self._client.v1.accounts.retrieve(account_id))

    # --- transfers ----------------------------------------------------------------------------

    def send_transfer(
        self, *, payout_id: int, annotator_id: int, destination: str, amount_micros: int
    ) -> TransferOutcome:
        """Transfer a payout (whole cents) to a connected account, exactly once per payout id."""
        key = payout_key(payout_id)
        try:
            transfer = self._client.v1.transfers.create(
                {
                    "amount": amount_micros // MICROS_PER_CENT,
                    "currency": self.currency,
                    "destination": destination,
                    "transfer_group": key,
                    "metadata": {"payout_id": str(payout_id), "annotator_id": str(annotator_id)},
                },
                {"idempotency_key": key},
            )
        except stripe.IdempotencyError as exc:
            # The key was used with other parameters: whatever it made stands; look it up.
            return TransferOutcome("unknown", reason=f"idempotency: {exc.user_message or exc}")
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            return TransferOutcome("failed", reason=_reason(exc))
        except stripe.StripeError as exc:
            # No answer (network, timeout), a server error, rate limiting, bad credentials:
            # the transfer may or may not exist.
            return TransferOutcome("unknown", reason=_reason(exc))
        return _transfer(transfer)

    def find_transfer(self, payout_id: int) -> TransferOutcome | None:
        """The transfer made for a payout, found by its transfer group and metadata (None: Stripe
        has none; raises `stripe`'s errors when Stripe cannot be asked)."""
        key = payout_key(payout_id)
        found = self._client.v1.transfers.list({"transfer_group": key, "limit": 10})
        for transfer in found.data:
            metadata = transfer.metadata.to_dict() if transfer.metadata is not None else {}
            if metadata.get("payout_id") == str(payout_id):
                return _transfer(transfer)
        return None


def _transfer(transfer: stripe.Transfer) -> TransferOutcome:
    destination = transfer.destination
    return TransferOutcome(
        "paid",
        transfer_id=transfer.id,
        amount_micros=int(transfer.amount) * MICROS_PER_CENT,
        destination=destination
        if isinstance(destination, str)
        else getattr(destination, "id", None),
    )


def _connected(account: stripe.Account) -> ConnectedAccount:
    capabilities = account.capabilities
    transfers = getattr(capabilities, "transfers", None) if capabilities is not None else None
    requirements = account.requirements
    return ConnectedAccount(
        id=account.id,
        details_submitted=bool(account.details_submitted),
        transfers_enabled=transfers == "active",
        disabled_reason=getattr(requirements, "disabled_reason", None) if requirements else None,
    )


def _reason(exc: stripe.StripeError) -> str:
    code = getattr(exc, "code", None)
    message = exc.user_message or str(exc) or type(exc).__name__
    return f"{code}: {message}"[:500] if code else message[:500]


_gateways: dict[tuple[Any, ...], StripeGateway] = {}
_gateways_lock = threading.Lock()


def gateway(settings: Settings) -> StripeGateway:
    """One gateway (and its HTTP connection pool) per Stripe configuration, per process."""
    key = (
        settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None,
        settings.stripe_webhook_secret.get_secret_value()
        if settings.stripe_webhook_secret
        else None,
        settings.stripe_api_base,
        settings.stripe_timeout_seconds,
        settings.currency,
        settings.stripe_connect_country,
    )
    with _gateways_lock:
        found = _gateways.get(key)
        if found is None:
            found = _gateways[key] = StripeGateway(settings)
        return found


def gateway_for(settings: Settings) -> StripeGateway | None:
    """The Stripe gateway when the `stripe` provider is configured, else None (manual)."""
    if settings.payouts_provider is not PayoutsProvider.stripe:
        return None
    return gateway(settings)
