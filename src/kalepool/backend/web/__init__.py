"""The web dashboard, served by the backend's own app on the same port as the API.

``/`` the pool; ``/join`` become a farmer; ``/sign-in``; ``/farmer``, ``/pooler`` and
``/operator`` for the signed-in farmer, pooler and operator. Server-rendered (Jinja2)
over the services the REST API uses; static files under ``/static`` (a stylesheet and a
small script that refreshes the live parts of a page: everything works without it).

Security: a sealed session cookie (:mod:`.session`), CSRF tokens on every form, a strict
Content-Security-Policy and the usual headers on every dashboard response
(:class:`SecurityHeaders`), sign-in attempts rate-limited per client IP.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalepool.backend.api.app_context import BackendContext
from kalepool.backend.web.core import STATIC, PageError, SignInRequired, Web, redirect, render
from kalepool.backend.web.pages import farmer, operator, pooler, public

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders", "install_dashboard"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: what the dashboard does not own (the API keeps its own headers; /docs loads its assets)
_NOT_DASHBOARD = ("/api/", "/docs", "/redoc", "/openapi.json", "/health", "/metrics")


class SecurityHeaders:
    """Adds the CSP and the other security headers to every dashboard response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_NOT_DASHBOARD):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return redirect(request, f"/sign-in?as={exc.role.value}")


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    response = render(request, "error.html", status=exc.status, title=exc.title, message=exc.message)
    response.headers.update(exc.headers)
    return response


def install_dashboard(app: FastAPI, context: BackendContext) -> None:
    """Serve the dashboard from ``app`` (call once, after the API's routes)."""
    app.state.web = Web.build(context)
    for router in (public.router, farmer.router, pooler.router, operator.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PageError, _page_error)
    app.add_middleware(SecurityHeaders)
