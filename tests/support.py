"""Small shared test helpers (factories live in conftest fixtures)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models import User

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Account:
    user: User
    token: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """Assert a response is RFC 9457 problem+json with `status` (and, given `slug`, the problem
    type `/problems/<slug>`); return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    assert body["title"]
    return body
