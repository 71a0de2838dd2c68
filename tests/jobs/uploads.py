"""Uploading a dataset in either import mode, inline (201 or a problem) or as a background run
(202, then the run's report or problem), with one outcome to assert on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.main import create_app
from tests.harness import require_commits
from tests.support import Account
from tests.workers.background import wait_until
from workers.in_process import InProcessRunner

How = Literal["inline", "background"]
#: Both modes, as `parametrize` values: a background import runs on the job engine's threads,
#: which see only committed rows.
HOWS: tuple[Any, ...] = ("inline", pytest.param("background", marks=pytest.mark.commits))


@dataclass
class Outcome:
    """An import's end: `status` 201 with the report, or the problem's status and body."""

    status: int
    body: dict[str, Any]

    @property
    def slug(self) -> str | None:
        kind = self.body.get("type")
        return kind.removeprefix("/problems/") if isinstance(kind, str) else None

    @property
    def report(self) -> dict[str, Any]:
        assert self.status == 201, self.body
        return self.body


@contextmanager
def import_client(db: Database, tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    """A client of an app whose background runs execute in this process (short retry backoff,
    so a run that fails unexpectedly ends within the test instead of hours later)."""
    changed = db.settings.model_copy(
        update={
            "upload_dir": tmp_path / "uploads",
            "job_min_backoff_ms": 20,
            "job_max_backoff_ms": 100,
            **settings,
        }
    )
    if db.connection is not None:  # rolled back: inline imports only, no engine to run
        with TestClient(create_app(changed, db)) as client:
            yield client
        return
    # A short consumer timeout: stopping the worker waits for it, once per test.
    runner = InProcessRunner(
        changed, db, scheduler=False, relay_interval=0.05, worker_timeout_ms=100
    )
    runner.start()
    try:
        with TestClient(create_app(changed, db)) as client:
            yield client
    finally:
        runner.stop()


def import_file(
    client: TestClient,
    owner: Account,
    job_id: int,
    body: bytes,
    *,
    how: How,
    content_type: str = "application/x-ndjson",
    timeout: float = 60,
    **params: str,
) -> Outcome:
    response = client.post(
        f"/v1/jobs/{job_id}/items",
        content=body,
        params={**params, "background": "true" if how == "background" else "false"},
        headers={**owner.headers, "Content-Type": content_type},
    )
    if how == "inline" or response.status_code != 202:
        return Outcome(response.status_code, response.json())
    require_commits(client.app.state.db, "a background import runs on the engine's threads")  # type: ignore[attr-defined]
    url = response.json()["status_url"]

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(url, headers=owner.headers).json()
        return run if run["state"] in ("succeeded", "failed") else None

    run = wait_until(finished, timeout=timeout, what="the import run to finish")
    if run["state"] == "succeeded":
        return Outcome(201, run["result"])
    return Outcome(run["error"]["status"], run["error"])
