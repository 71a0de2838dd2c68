"""A thin HTTP client for the simulation: one call per API use, an exception on any unexpected
status (the simulator's purpose is to find those), and a count of calls per route."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import httpx

_ID = re.compile(r"/\d+")


class UnexpectedResponse(Exception):
    """The service answered with a status the simulation did not expect: a finding."""

    def __init__(self, method: str, path: str, response: httpx.Response) -> None:
        self.status = response.status_code
        self.body = response.text[:2000]
        super().__init__(f"{method} {path} -> {self.status}: {self.body}")


class Api:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120.0)
        self.calls: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}  # time spent per route

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        expect: tuple[int, ...] = (200, 201, 202, 204),
        route: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        response = self.http.request(method, path, headers=headers, **kwargs)
        key = f"{method} {route or _ID.sub('/{id}', path)}"
        self.calls[key] += 1
        self.seconds[key] = self.seconds.get(key, 0.0) + time.monotonic() - started
        if response.status_code not in expect:
            raise UnexpectedResponse(method, path, response)
        return response

    def get(self, path: str, token: str, **kwargs: Any) -> Any:
        return self.call("GET", path, token, **kwargs).json()

    def post(self, path: str, token: str | None, body: Any = None, **kwargs: Any) -> Any:
        response = self.call("POST", path, token, json=body, **kwargs)
        return response.json() if response.content else None

    def pages(self, path: str, token: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a keyset-paged list."""
        items: list[dict[str, Any]] = []
        after = None
        while True:
            query = {**params, "limit": 200, **({"after": after} if after else {})}
            page = self.get(path, token, params=query, route=path)
            items += page["items"]
            after = page["next_cursor"]
            if after is None:
                return items
