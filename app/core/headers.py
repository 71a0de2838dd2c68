"""Security headers on every response, and the API docs served from local assets.

Every response gets `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
`Referrer-Policy: no-referrer` and, unless it set its own, a Content-Security-Policy that allows
nothing (`default-src 'none'; frame-ancestors 'none'`: an API response is never a page) and
`Cache-Control: no-store`. No-store is on every response, not only those carrying secrets
(tokens, webhook signing secrets, invite codes): which responses carry one changes as the API
grows, and an API response is not worth caching in a shared cache anyway.

The docs pages (`/docs`, Swagger UI; `/redoc`, ReDoc) load their scripts and styles from this
service (`/docs/assets/`, the files the `fastapi-offline` package ships), not from a CDN, so they
work offline; their CSP allows those assets, the page's own inline script by its hash, the
inline styles both UIs inject, and fetching the OpenAPI document from this origin. The assets
may be cached for a day.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from os import PathLike
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_CACHE = "public, max-age=86400"

_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    headers.raw.append((name, value))
                headers.setdefault("content-security-policy", API_CSP)
                headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Assets(StaticFiles):
    def file_response(
        self,
        full_path: str | PathLike[str],
        stat_result: object,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)  # type: ignore[arg-type]
        response.headers["cache-control"] = ASSETS_CACHE
        return response


def docs_page(html: HTMLResponse) -> HTMLResponse:
    """A docs page with a CSP admitting its own inline scripts (by hash) and local assets."""
    scripts = _INLINE_SCRIPT.findall(bytes(html.body).decode())
    sources = ["'self'"] + [
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    ]
    html.headers["content-security-policy"] = DOCS_CSP.format(scripts=" ".join(sources))
    return html


def install_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` on local assets (create the app with `docs_url=None,
    redoc_url=None`, so FastAPI's CDN-loading pages are not there)."""
    app.mount(ASSETS_PATH, _Assets(directory=ASSETS_DIR), name="docs-assets")

    def page(
        render: Callable[[str, str], HTMLResponse],
    ) -> Callable[[Request], Awaitable[HTMLResponse]]:
        async def endpoint(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return docs_page(render(root, f"{root}{app.openapi_url}"))

        return endpoint

    app.add_api_route(
        "/docs",
        page(
            lambda root, spec: get_swagger_ui_html(
                openapi_url=spec,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        ),
        include_in_schema=False,
    )
    app.add_api_route(
        "/redoc",
        page(
            lambda root, spec: get_redoc_html(
                openapi_url=spec,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        ),
        include_in_schema=False,
    )
