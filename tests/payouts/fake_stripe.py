"""A small fake Stripe of our own: an HTTP server on 127.0.0.1 that the unchanged `stripe` SDK
talks to (through TESSERA_STRIPE_API_BASE), with the parts of the API Tessera uses: Express
accounts, account links, transfers (with Stripe's idempotency-key semantics), Checkout Sessions
and events. Tests drive the rest from Python (`complete_checkout`, `update_account`) and sign
webhook bodies the way Stripe does (`sign`).

Idempotency, as Stripe documents it: a POST with an `Idempotency-Key` stores its response; the
same key with the same parameters replays it (header `Idempotent-Replayed: true`), with other
parameters it is a 400 `idempotency_error`, and while the first request is still being handled
a second one gets a 409. Validation errors (missing parameters) are not stored.

Faults for tests: `fail_transfers` (Stripe refuses the next transfers), `drop_transfer_responses`
(the transfer is made, then the connection closes without an answer), and
`on_transfer_created` (called after a transfer exists and before its response is written: the
crash test kills the sender there).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_fake_tessera"
WEBHOOK_SECRET = "whsec_fake_tessera_secret"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`: `t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<payload>" keyed with the endpoint secret>` (Stripe's scheme v1)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part, following in itertools.pairwise(parts):
            child = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = child
                node = node[index]
            else:
                node = node.setdefault(part, child)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


class StripeFailure(Exception):
    def __init__(self, status: int, error: dict[str, Any], *, store: bool = True) -> None:
        super().__init__(error.get("message"))
        self.status, self.error, self.store = status, error, store


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish mid-request (the crash test kills them) are expected."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class FakeStripe:
    api_key: str = API_KEY
    balance_cents: int = 10**12  # the platform's Stripe balance, which transfers draw on
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_transfers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    drop_transfer_responses: int = 0
    on_transfer_created: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.balance_cents = 10**12
            for store in (self.accounts, self.transfers, self.sessions, self.payment_intents):
                store.clear()
            self.events.clear()
            self.idempotency.clear()
            self.requests.clear()
            self.fail_transfers.clear()
            self.drop_transfer_responses = 0
            self.on_transfer_created = None

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):08d}{int(time.time() * 1000) % 100000:05d}"

    # --- HTTP -----------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else ""
        params = decode_form(raw if method == "POST" else url.query)
        with self.lock:
            self.requests.append((method, url.path))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._reply(
                request,
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
            )
            return
        key = request.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = json.dumps([url.path, params], sort_keys=True)
        if key is not None:
            with self.lock:
                stored = self.idempotency.get(key)
                if stored == "in-progress":
                    self._reply(
                        request,
                        409,
                        _idempotency_error(
                            "There is currently another in-progress request using this "
                            "Idempotent Key. Please try again later."
                        ),
                    )
                    return
                if stored is not None:
                    if stored[0] != fingerprint:
                        self._reply(
                            request,
                            400,
                            _idempotency_error(
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with."
                            ),
                        )
                        return
                    self._reply(request, stored[1], stored[2], replayed=True)
                    return
                self.idempotency[key] = "in-progress"
        try:
            status, body = 200, self._route(method, url.path, params, key)
        except StripeFailure as failure:
            status, body = failure.status, {"error": failure.error}
            if key is not None and not failure.store:
                with self.lock:
                    self.idempotency.pop(key, None)
                key = None
        if key is not None:
            with self.lock:
                self.idempotency[key] = (fingerprint, status, body)
        self._reply(request, status, body)

    def _reply(
        self, request: BaseHTTPRequestHandler, status: int, body: Any, *, replayed: bool = False
    ) -> None:
        if request.command == "POST" and urlsplit(request.path).path == "/v1/transfers":
            with self.lock:
                drop = self.drop_transfer_responses > 0
                if drop:
                    self.drop_transfer_responses -= 1
            if drop:  # the work is done (and stored for the key), the answer never arrives
                request.close_connection = True
                request.connection.close()
                return
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Request-Id", f"req_{next(self._ids)}")
        if replayed:
            request.send_header("Idempotent-Replayed", "true")
        request.end_headers()
        request.wfile.write(data)

    def _route(self, method: str, path: str, params: dict[str, Any], key: str | None) -> Any:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            raise StripeFailure(404, _invalid(f"Unrecognized request URL ({method}: {path})"))
        rest = parts[1:]
        if rest == ["accounts"] and method == "POST":
            return self._create_account(params)
        if len(rest) == 2 and rest[0] == "accounts" and method == "GET":
            return self._get(self.accounts, rest[1], "account")
        if rest == ["account_links"] and method == "POST":
            return self._create_account_link(params)
        if rest == ["transfers"] and method == "POST":
            return self._create_transfer(params)
        if rest == ["transfers"] and method == "GET":
            return self._list(self.transfers, params, "/v1/transfers", "transfer_group")
        if len(rest) == 2 and rest[0] == "transfers" and method == "GET":
            return self._get(self.transfers, rest[1], "transfer")
        if rest == ["checkout", "sessions"] and method == "POST":
            return self._create_session(params)
        if rest == ["events"] and method == "GET":
            with self.lock:
                data = list(reversed(self.events))
            return {"object": "list", "url": "/v1/events", "has_more": False, "data": data}
        if len(rest) == 2 and rest[0] == "events" and method == "GET":
            with self.lock:
                found = [e for e in self.events if e["id"] == rest[1]]
            if not found:
                raise StripeFailure(
                    404, _invalid(f"No such event: '{rest[1]}'", "resource_missing")
                )
            return found[0]
        raise StripeFailure(404, _invalid(f"Unrecognized request URL ({method}: {path})"))

    def _get(self, store: dict[str, Any], object_id: str, what: str) -> Any:
        with self.lock:
            if object_id not in store:
                raise StripeFailure(
                    404, _invalid(f"No such {what}: '{object_id}'", "resource_missing")
                )
            return dict(store[object_id])

    def _list(self, store: dict[str, Any], params: dict[str, Any], url: str, key: str) -> Any:
        with self.lock:
            rows = [dict(v) for v in store.values()]
        if params.get(key):
            rows = [r for r in rows if r.get(key) == params[key]]
        rows.sort(key=lambda r: r["created"], reverse=True)
        limit = int(params.get("limit", 10))
        return {"object": "list", "url": url, "has_more": len(rows) > limit, "data": rows[:limit]}

    # --- objects ----------------------------------------------------------------------------

    def _create_account(self, params: dict[str, Any]) -> Any:
        if params.get("type") != "express":
            raise StripeFailure(
                400, _invalid("Only express accounts here", param="type"), store=False
            )
        account = {
            "id": self.new_id("acct"),
            "object": "account",
            "type": "express",
            "country": params.get("country", "US"),
            "email": params.get("email"),
            "details_submitted": False,
            "charges_enabled": False,
            "payouts_enabled": False,
            "capabilities": {"transfers": "inactive"},
            "requirements": {
                "disabled_reason": "requirements.past_due",
                "currently_due": ["individual.dob.day"],
            },
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        with self.lock:
            self.accounts[account["id"]] = account
        return account

    def _create_account_link(self, params: dict[str, Any]) -> Any:
        account = params.get("account")
        with self.lock:
            if account not in self.accounts:
                raise StripeFailure(400, _invalid(f"No such account: '{account}'", param="account"))
        now = int(time.time())
        return {
            "object": "account_link",
            "url": f"{self.url}/connect/onboarding/{account}/{self.new_id('link')}",
            "created": now,
            "expires_at": now + 300,
        }

    def _create_transfer(self, params: dict[str, Any]) -> Any:
        amount = int(params.get("amount") or 0)
        destination = params.get("destination")
        if amount <= 0 or not params.get("currency") or not destination:
            raise StripeFailure(
                400, _invalid("Missing amount, currency or destination"), store=False
            )
        with self.lock:
            if self.fail_transfers:
                status, error = self.fail_transfers.pop(0)
                raise StripeFailure(status, error)
            account = self.accounts.get(destination)
            if account is None:
                raise StripeFailure(
                    400,
                    _invalid(
                        f"No such destination: '{destination}'", "resource_missing", "destination"
                    ),
                )
            if account["capabilities"].get("transfers") != "active":
                raise StripeFailure(
                    400,
                    _invalid(
                        "Your destination account needs to have at least one of the following "
                        "capabilities enabled: transfers",
                        "insufficient_capabilities_for_transfer",
                        "destination",
                    ),
                )
            if amount > self.balance_cents:
                raise StripeFailure(
                    400,
                    _invalid(
                        "You have insufficient funds in your Stripe account.",
                        "balance_insufficient",
                    ),
                )
            self.balance_cents -= amount
            transfer = {
                "id": self.new_id("tr"),
                "object": "transfer",
                "amount": amount,
                "amount_reversed": 0,
                "currency": params["currency"],
                "destination": destination,
                "transfer_group": params.get("transfer_group"),
                "metadata": params.get("metadata", {}),
                "reversed": False,
                "created": int(time.time()),
                "livemode": False,
            }
            self.transfers[transfer["id"]] = transfer
            self._event("transfer.created", transfer)
        if self.on_transfer_created is not None:
            self.on_transfer_created(transfer)
        return transfer

    def _create_session(self, params: dict[str, Any]) -> Any:
        items = params.get("line_items") or []
        if not items:
            raise StripeFailure(
                400, _invalid("Missing line_items", param="line_items"), store=False
            )
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        session = {
            "id": self.new_id("cs_test"),
            "object": "checkout.session",
            "mode": params.get("mode"),
            "amount_total": total,
            "currency": items[0]["price_data"]["currency"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get(
                "metadata", {}
            ),
        }
        session["url"] = f"{self.url}/checkout/{session['id']}"
        with self.lock:
            self.sessions[session["id"]] = session
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # --- what the customer (or Stripe) does, driven by tests --------------------------------

    def complete_checkout(self, session_id: str) -> list[dict[str, Any]]:
        """The customer paid: the session completes, its payment intent succeeds; returns the
        two events, in the order Stripe may send them."""
        with self.lock:
            session = self.sessions[session_id]
            intent = {
                "id": self.new_id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": session["amount_total"],
                "currency": session["currency"],
                "status": "succeeded",
                "metadata": session["_payment_intent_metadata"],
                "created": int(time.time()),
            }
            self.payment_intents[intent["id"]] = intent
            session.update(payment_status="paid", status="complete", payment_intent=intent["id"])
            public = {k: v for k, v in session.items() if not k.startswith("_")}
            return [
                self._event("checkout.session.completed", public),
                self._event("payment_intent.succeeded", intent),
            ]

    def update_account(self, account_id: str, *, transfers: bool) -> dict[str, Any]:
        """Onboarding finished (transfers active) or the account got restricted; returns the
        `account.updated` event."""
        with self.lock:
            account = self.accounts[account_id]
            account.update(
                details_submitted=True,
                payouts_enabled=transfers,
                charges_enabled=transfers,
                capabilities={"transfers": "active" if transfers else "inactive"},
                requirements={
                    "disabled_reason": None if transfers else "rejected.other",
                    "currently_due": [],
                },
            )
            return self._event("account.updated", dict(account))

    def event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._event(type_, obj)

    def _event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": "2025-01-01",
            "type": type_,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        self.events.append(event)
        return event

    def transfers_for(self, payout_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [
                t
                for t in self.transfers.values()
                if t["metadata"].get("payout_id") == str(payout_id)
            ]


def _invalid(message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return error


def _idempotency_error(message: str) -> dict[str, Any]:
    return {"error": {"type": "idempotency_error", "message": message}}
