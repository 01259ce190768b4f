"""The dashboard's session cookie and CSRF tokens.

The cookie holds the signed-in credential (a farmer token, a pooler API key or the admin
token), its role, a CSRF seed and an expiry, sealed with AES-256-GCM under a key derived
from the backend's master key (so every backend process sharing the keyring reads it,
and nobody else can read or forge it). It is ``HttpOnly``, ``SameSite=Strict``, and
``Secure`` when the request came over https. The credential never appears in a URL.

Every form carries a CSRF token: HMAC-SHA256 over the session's random seed, so a token
is good only with the cookie it was issued beside. Anonymous visitors get a session too
(no credential), so the sign-in and registration forms are protected the same way; a
sign-in starts a new session (new seed), so a seed planted before it is worthless after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "Session", "SessionCodec"]

COOKIE = "kp_session"
_NONCE = 12
_VERSION = b"kalepool/web-session/v1"


@dataclass(frozen=True, repr=False)
class Session:
    """One browser's session: anonymous (``token`` None) or signed in as ``role``."""

    csrf_seed: str
    expires: int
    token: str | None = None
    role: str | None = None

    def __repr__(self) -> str:  # never the credential
        return f"Session(role={self.role!r}, expires={self.expires})"

    @property
    def signed_in(self) -> bool:
        return self.token is not None


class SessionCodec:
    """Seals and opens session cookies; issues and checks CSRF tokens."""

    def __init__(self, key: bytes, *, lifetime: int = 8 * 3600) -> None:
        self._aead = AESGCM(hmac.new(key, b"seal", hashlib.sha256).digest())
        self._mac = hmac.new(key, b"csrf", hashlib.sha256).digest()
        self.lifetime = lifetime

    def new(self, *, token: str | None = None, role: str | None = None) -> Session:
        return Session(os.urandom(16).hex(), int(time.time()) + self.lifetime, token, role)

    def seal(self, session: Session) -> str:
        payload = json.dumps(
            {"c": session.csrf_seed, "e": session.expires, "t": session.token, "r": session.role},
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(_NONCE)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, payload, _VERSION)).decode()

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value; ``None`` when absent, forged, or expired."""
        if not value or len(value) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.encode())
            data = json.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _VERSION))
            session = Session(str(data["c"]), int(data["e"]), data.get("t"), data.get("r"))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time():
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._mac, session.csrf_seed.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))

    def renewed(self, session: Session) -> Session:
        return replace(session, expires=int(time.time()) + self.lifetime)


def set_cookie(response: Response, request: Request, codec: SessionCodec, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        codec.seal(session),
        max_age=codec.lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
