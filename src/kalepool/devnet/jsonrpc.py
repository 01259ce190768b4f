"""JSON-RPC 2.0 over HTTP, as stellar-rpc serves it (creachadair/jrpc2's HTTP bridge).

- Only ``POST`` (else 405, ``Accept-Post: application/json``) with a
  ``Content-Type`` of ``application/json``, charset utf-8 if any (else 415).
- A body that is not JSON is an HTTP error: 500 with ``[-32600] invalid request``.
- One request object or a batch; a message that is not a valid request answers a
  JSON-RPC ``invalid request`` error. Notifications (no ``id``) get no reply; when no
  reply is left the answer is 204 with no body. A batch with a single reply is answered
  with that reply alone.
- Params by name only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


def error_reply(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data if isinstance(data, str) else json.dumps(data)
    return {"jsonrpc": "2.0", "id": rid, "error": error}


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _plain(status: int, text: str) -> HttpReply:
    return HttpReply(status, text.encode(), "text/plain; charset=utf-8")


class _NotJson(ValueError):
    """The body is not JSON: an HTTP error, not a JSON-RPC one (never leaves here)."""


def serve(method: str, content_type: str | None, body: bytes, answer: Callable[[bytes], Any]) -> HttpReply:
    """Answer one HTTP request to the endpoint; ``answer`` turns a body into the reply
    document (None: nothing to answer), raising ``_NotJson`` (see :func:`answer`)."""
    if method != "POST":
        return HttpReply(405, headers={"Accept-Post": "application/json"})
    media = Message()
    media["content-type"] = content_type or ""
    if media.get_content_type() != "application/json" or not content_type:
        return _plain(415, "content-type must be application/json\n")
    charset = media.get_param("charset")
    if charset is not None and str(charset).lower() not in ("utf-8", "utf8"):
        return _plain(415, "invalid content-type charset\n")
    try:
        document = answer(body)
    except _NotJson:
        return _plain(500, f"[{INVALID_REQUEST}] invalid request\n")
    if document is None:
        return HttpReply(204)
    return HttpReply(200, json.dumps(document).encode(), "application/json")


def answer(body: bytes, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """The reply document to a body: one reply, a list of them, or None when every
    message was a notification; ``handle`` answers one valid request object."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _NotJson(str(exc)) from exc
    messages = document if isinstance(document, list) else [document]
    replies = []
    for message in messages:
        if not _valid(message):
            rid = message.get("id") if isinstance(message, dict) else None
            replies.append(error_reply(rid, INVALID_REQUEST, "invalid request"))
            continue
        reply = handle(message)
        if "id" in message:  # a notification is answered with nothing
            replies.append(reply)
    if not replies:
        return None
    return replies[0] if len(replies) == 1 else replies


def _valid(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("jsonrpc") == "2.0"
        and isinstance(message.get("method"), str)
        and bool(message["method"])
    )
