"""The `tessera worker` process on real Redis, RabbitMQ as a broker, and the commands' guards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from app.cli import cli
from app.core.background import enqueue
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import OutboxJob, RunState, WorkerHeartbeat
from tests.support import REPO_ROOT
from tests.workers.background import (
    REDIS_URL,
    Background,
    background_harness,
    require_service,
    wait_until,
)
from tests.workers.test_job_flow import calls, start_run

pytestmark = pytest.mark.commits  # background workers and processes see only what was committed


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis namespace for one test; its keys are deleted afterwards."""
    require_service("Redis", REDIS_URL)
    name = f"tt{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_tessera_worker_runs_outbox_jobs_reports_in_and_shuts_down_gracefully(
    db: Database, settings: Settings, namespace: str
) -> None:
    long_ago = utcnow() - timedelta(days=30)
    with db.transaction() as session:
        old = enqueue(session, "test.count", 1)  # finished a month ago: prunable
        session.execute(
            update(OutboxJob).where(OutboxJob.id == old).values(sent_at=long_ago, done_at=long_ago)
        )
        prune = enqueue(session, "outbox.prune")
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": settings.database_url,
        "TESSERA_SECRET_KEY": settings.resolved_secret_key(),
        "TESSERA_BROKER_URL": REDIS_URL,
        "TESSERA_BROKER_NAMESPACE": namespace,
        "TESSERA_LOG_JSON": "false",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--processes", "1", "--threads", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def pruned() -> bool:
            with db.read_session() as session:
                ids = set(session.scalars(select(OutboxJob.id)))
                done = session.scalar(select(OutboxJob.done_at).where(OutboxJob.id == prune))
            return old not in ids and done is not None

        wait_until(pruned, timeout=120, what="the worker to relay and run outbox.prune")

        with_broker = settings.model_copy(
            update={"broker_url": REDIS_URL, "broker_namespace": namespace}
        )
        metrics = {"Authorization": "Bearer " + "m" * 40}
        with_token = with_broker.model_copy(update={"metrics_token": SecretStr("m" * 40)})
        with TestClient(create_app(with_token, db), headers=metrics) as client:
            # Queue depths travel in heartbeats; wait for one written after the queue drained.
            def drained() -> dict[str, Any] | None:
                response = client.get("/readyz")
                if response.status_code != 200:
                    return None
                body: dict[str, Any] = response.json()
                depth = body["checks"]["background"].get("queue_depth", {}).get("default")
                return body if depth == {"ready": 0, "delayed": 0, "dead": 0} else None

            ready = wait_until(drained, timeout=120, what="a heartbeat showing the drained queue")
        background = ready["checks"]["background"]
        assert background["workers"] == {"worker": 1}
        assert background["queue_depth"]["default"] == {"ready": 0, "delayed": 0, "dead": 0}
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert code == 0, worker.stderr.read() if worker.stderr else ""
    with db.read_session() as session:  # said goodbye
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0


@pytest.fixture
def rabbitmq(settings: Settings, db: Database) -> Iterator[Background]:
    yield from background_harness("rabbitmq", settings, db)


def test_rabbitmq_works_as_the_broker_too(rabbitmq: Background) -> None:
    done = start_run(rabbitmq, "test.count")
    failing = start_run(rabbitmq, "test.fail")
    rabbitmq.start()
    wait_until(lambda: calls(rabbitmq, done), what="the job to run on RabbitMQ")
    wait_until(
        lambda: rabbitmq.run(failing).state is RunState.failed,
        timeout=20,
        what="the failing job to die",
    )
    assert calls(rabbitmq, done) == 1
    depth = wait_until(
        lambda: (d := rabbitmq.handle.queue_depth())["default"]["dead"] == 1 and d,
        what="the message in RabbitMQ's dead-letter queue",
    )
    assert depth["default"]["ready"] == 0


runner = CliRunner()


@pytest.mark.usefixtures("db")
def test_worker_needs_a_broker_and_both_commands_need_a_migrated_schema(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TESSERA_SECRET_KEY", settings.resolved_secret_key())
    monkeypatch.delenv("TESSERA_BROKER_URL", raising=False)
    no_broker = runner.invoke(cli, ["worker"])
    assert no_broker.exit_code == 2
    assert "TESSERA_BROKER_URL" in no_broker.output

    monkeypatch.setenv("TESSERA_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("TESSERA_BROKER_URL", REDIS_URL)
    for command in (["worker"], ["scheduler"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1, result.output
        assert "tessera migrate" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tessera_serve_runs_jobs_and_the_scheduler_in_process_without_a_broker(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--db") != "sqlite":
        pytest.skip("the embedded default (its own SQLite file) is covered in the SQLite pass")
    port = free_port()
    database = tmp_path / "embedded.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")},
        "TESSERA_DATABASE_URL": f"sqlite:///{database}",
        "TESSERA_DEMO": "false",
        "TESSERA_LOG_JSON": "false",
        "TESSERA_METRICS_TOKEN": "m" * 40,  # /readyz shows its checks to this token
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = Database(Settings(database_url=f"sqlite:///{database}", _env_file=None))  # type: ignore[call-arg]
    try:

        def ready() -> dict[str, object] | None:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/readyz",
                    headers={"Authorization": "Bearer " + "m" * 40},
                    timeout=2,
                )
            except httpx.TransportError:
                return None
            body: dict[str, object] = response.json()
            checks = body.get("checks", {})
            assert isinstance(checks, dict)
            workers = checks.get("background", {}).get("workers")
            return body if response.status_code == 200 and workers == {"in_process": 1} else None

        wait_until(ready, timeout=120, what="tessera serve with its in-process runner")

        def periodic_jobs_ran() -> bool:  # the in-process scheduler enqueued, the runner ran
            with db.read_session() as session:
                rows = session.execute(select(OutboxJob.name, OutboxJob.done_at)).all()
            return {name for name, done in rows if done} >= {"outbox.prune"}

        wait_until(periodic_jobs_ran, timeout=120, what="the periodic jobs to run in-process")
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=30)
    assert code == 0, serve.stderr.read() if serve.stderr else ""
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0
    db.dispose()
