"""What every dashboard page shares: templates, the session, CSRF, who is signed in.

Pages are thin: they read the session, call the same services the REST API calls, and
render a template. Nothing here decides anything about money or the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kalepool import __version__
from kalepool.backend.api.app_context import BackendContext
from kalepool.backend.errors import RateLimited, ServiceError
from kalepool.backend.ratelimit import RateLimiter
from kalepool.backend.security import key_kind
from kalepool.backend.services.auth import Principal, Role, authenticate
from kalepool.backend.web.format import FILTERS
from kalepool.backend.web.session import COOKIE, Session, SessionCodec, set_cookie

__all__ = [
    "PageError",
    "SignInRequired",
    "Web",
    "checked_form",
    "client_ip",
    "page_error",
    "principal",
    "redirect",
    "render",
    "role_of_token",
    "session_of",
    "web_of",
]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


class SignInRequired(Exception):
    """The page needs a credential of ``role`` and the session has none (or a dead one)."""

    def __init__(self, role: Role) -> None:
        super().__init__(role.value)
        self.role = role


class PageError(Exception):
    """A page answer other than 200: rendered as ``error.html`` with this status."""

    def __init__(
        self, status: int, title: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = headers or {}


@dataclass
class Web:
    """The dashboard's parts, one per app (``app.state.web``)."""

    backend: BackendContext
    templates: jinja2.Environment
    codec: SessionCodec
    signin_limiter: RateLimiter

    @classmethod
    def build(cls, backend: BackendContext) -> Web:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(FILTERS)
        settings = backend.settings
        codec = SessionCodec(backend.keyring.derive_key("web-session"))
        limiter = RateLimiter(settings.signin_rate_limit_per_minute / 60.0, settings.signin_rate_limit_burst)
        return cls(backend, env, codec, limiter)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_of(request: Request) -> Session:
    """This request's session: the cookie's, or a new anonymous one (then sent back)."""
    found: Session | None = getattr(request.state, "web_session", None)
    if found is not None:
        return found
    codec = web_of(request).codec
    session = codec.open(request.cookies.get(COOKIE))
    if session is None:
        session = codec.new()
        request.state.web_session_changed = True
    request.state.web_session = session
    return session


def replace_session(request: Request, session: Session) -> None:
    """Make ``session`` this browser's session from this response on (sign-in, sign-out)."""
    request.state.web_session = session
    request.state.web_session_changed = True


def _finish(request: Request, response: Response) -> Response:
    if getattr(request.state, "web_session_changed", False):
        web = web_of(request)
        set_cookie(response, request, web.codec, session_of(request))
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    web = web_of(request)
    session = session_of(request)
    settings = web.backend.settings
    page = web.templates.get_template(template).render(
        request=request,
        session=session,
        csrf=web.codec.csrf_token(session),
        version=__version__,
        refresh_seconds=settings.dashboard_refresh_seconds,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(page, status_code=status)
    _finish(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """303 See Other (after a POST: the browser GETs ``url``)."""
    return _finish(request, RedirectResponse(url, status_code=303))


async def checked_form(request: Request) -> dict[str, str]:
    """The POSTed form, once its CSRF token matches this session's; 403 otherwise."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    web = web_of(request)
    if not web.codec.csrf_ok(session_of(request), values.pop("csrf", None)):
        raise PageError(
            403,
            "Form expired",
            "This form is not valid any more (it came from another page or an old session). "
            "Go back, reload the page and send it again.",
        )
    return values


def role_of_token(token: str) -> Role:
    kind = key_kind(token)
    return Role(kind.value) if kind is not None else Role.ADMIN


async def principal(request: Request, role: Role) -> Principal:
    """Who is signed in, checked against the database like a bearer token: the same
    ``authenticate`` as the API and the same per-credential rate limit."""
    session = session_of(request)
    if session.token is None:
        raise SignInRequired(role)
    if session.role != role.value:
        raise PageError(
            403,
            "Not for this sign-in",
            f"You are signed in as a {session.role}; this page is for the {role.value}. "
            "Sign out and sign in with the right token.",
        )
    context = web_of(request).backend
    wait = context.limiter.acquire("key:" + hashlib.sha256(session.token.encode()).hexdigest())
    if wait:
        raise page_error(RateLimited(wait))
    admin = context.settings.admin_token.get_secret_value() if context.settings.admin_token else None
    try:
        return await authenticate(context.db, session.token, role=role, admin_token=admin)
    except ServiceError as exc:
        if exc.status == 401:  # revoked or unknown since the sign-in
            replace_session(request, web_of(request).codec.new())
            raise SignInRequired(role) from exc
        raise page_error(exc) from exc


def page_error(exc: ServiceError) -> PageError:
    """A service's refusal as a page (429 keeps its ``Retry-After``)."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
        return PageError(429, "Slow down", "Too many attempts: wait a little and try again.", headers=headers)
    titles = {401: "Sign in again", 403: "Refused", 404: "Not found", 409: "Not possible now"}
    return PageError(exc.status, titles.get(exc.status, "Error"), exc.message, headers=headers)
