"""The Tessera a simulation runs against: started in this process (uvicorn on a thread, background
jobs and the scheduler on threads, as `tessera serve` runs them), or one already running
(`--base-url`, given an admin token). Also the webhook receiver the simulated clients register."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Settings of a started Tessera: a fair-pay floor, a low payout minimum, webhooks to 127.0.0.1
#: allowed, and heartbeats every minute of simulated time.
FLOOR_MICROS_PER_HOUR = 12_000_000
SIM_SETTINGS: dict[str, Any] = {
    "fair_pay_floor_micros_per_hour": FLOOR_MICROS_PER_HOUR,
    "payout_minimum_micros": 10_000,
    "webhook_allowed_networks": ["127.0.0.1/32"],
    "heartbeat_interval_seconds": 60,
    "demo": False,
    "auth_address_signups": 1_000_000,  # every simulated person signs up from 127.0.0.1
    "log_json": True,
    "log_level": "WARNING",
    "routing_cache_seconds": 0,
    "eligibility_cache_seconds": 0,
    # a few connections are plenty for one simulated market (its calls come one at a time),
    # and leave the database's others to whatever runs beside it
    "db_pool_size": 4,
    "db_max_overflow": 4,
    "request_threads": 8,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimClock:
    """Simulated seconds since the start. With a started Tessera its clock is moved along (the
    service then measures leases and active time in simulated time); otherwise it is real time."""

    def __init__(self, controls_service: bool) -> None:
        self.controls_service = controls_service
        self.start = datetime.now(UTC)
        self.now = 0.0

    def advance_to(self, t: float) -> None:
        if t <= self.now:
            return
        self.now = t
        if self.controls_service:
            from app.core import clock

            gap = self.start + timedelta(seconds=t) - clock.utcnow()
            if gap > timedelta(0):
                clock.travel(gap)

    def real(self) -> float:
        """Where the service's clock is, in simulated seconds."""
        if self.controls_service:
            from app.core import clock

            return (clock.utcnow() - self.start).total_seconds()
        return (datetime.now(UTC) - self.start).total_seconds()

    def reset(self) -> None:
        if self.controls_service:
            from app.core import clock

            clock.reset()


@dataclass
class Service:
    base_url: str
    admin_token: str
    clock: SimClock


@contextmanager
def started_service(database_url: str, secret_key: str | None = None) -> Iterator[Service]:
    """Migrate `database_url`, make an administrator and serve it on a free port, with background
    jobs and the scheduler on threads; stop it all afterwards."""
    import uvicorn

    from app.accounts import service as accounts
    from app.core.db import Database
    from app.core.settings import load_settings
    from app.main import create_app
    from migrations.schema import upgrade_to_head
    from workers.in_process import InProcessRunner

    overrides = dict(SIM_SETTINGS, database_url=database_url, broker_url=None)
    if secret_key is not None:
        overrides["secret_key"] = secret_key
    settings = load_settings(**overrides)
    db = Database(settings)
    upgrade_to_head(db.engine)
    with db.transaction() as session:
        email = f"sim-admin-{int(time.time() * 1000)}@example.com"
        _, issued = accounts.create_admin(
            session, email=email, display_name="Simulation admin", password=None
        )
        admin_token = issued.secret
    runner = InProcessRunner(settings, Database(settings), threads=2)
    runner.start()
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, db),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="tessera-sim-server", daemon=True)
    thread.start()
    clock = SimClock(controls_service=True)
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulated Tessera did not start")
            time.sleep(0.05)
        yield Service(f"http://127.0.0.1:{port}", admin_token, clock)
    finally:
        server.should_exit = True
        thread.join(30)
        runner.stop()
        runner.db.dispose()
        db.dispose()
        clock.reset()


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records each delivery and whether its signature holds."""

    port: int = 0
    secrets: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        signed = f"{message_id}.{timestamp}.".encode() + body
        for secret in self.secrets:
            key = base64.b64decode(secret.removeprefix("whsec_"))
            digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            if any(
                hmac.compare_digest("v1," + digest, s)
                for s in headers.get("webhook-signature", "").split()
            ):
                return True
        return False


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            with receiver.lock:
                receiver.received.append(
                    {
                        "id": headers.get("webhook-id"),
                        "type": event.get("type"),
                        "valid": receiver.verify(headers, body),
                    }
                )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = http.server_address[1]
    thread = threading.Thread(target=http.serve_forever, name="tessera-sim-hooks", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        http.shutdown()
        http.server_close()
