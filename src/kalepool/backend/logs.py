"""Logging for the backend: structlog over the standard library, secrets redacted.

Three rules keep credentials out of every log line, whatever the code logs by mistake:

* tracebacks are formatted **without local variables**, in both renderers (a frame's
  locals hold bearer tokens, the admin token, keys); the JSON renderer carries them as a
  structured list (``exception``: one entry per chained exception, its frames);
* long text is cut: every string field and every exception message at
  :data:`MAX_TEXT` characters (SQLAlchemy's messages quote whole statements; their
  parameters are hidden by the engine, ``hide_parameters``);
* **one redaction step on the final rendered line**: anything shaped like a Stellar
  secret seed (``S`` + 55 base32), a kalepool API key, a bearer credential, the path and
  query of a URL (an RPC URL may carry a key there) or its user:password, and any value
  registered with :func:`protect` (the admin token, master keys) becomes ``[REDACTED]``.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from typing import Any, TextIO

import psycopg
import structlog
from sqlalchemy.exc import StatementError

__all__ = [
    "MAX_TEXT",
    "REDACTED",
    "configure_logging",
    "describe",
    "get_logger",
    "protect",
    "redact",
    "truncate",
]

REDACTED = "[REDACTED]"
MAX_TEXT = 2000

# Characters that end a token inside a rendered line (JSON quotes and escapes included, so a
# redaction never breaks a JSON line).
_END = r"\s\"'\\<>,;)\]}"
_PATTERNS = [
    # Stellar secret seeds, kalepool API keys and farmer tokens
    (re.compile(r"\bS[A-Z2-7]{55}\b"), REDACTED),
    (re.compile(r"\bkp_(?:pooler|farmer)_[A-Za-z0-9_-]{8,}"), REDACTED),
    # an Authorization value wherever it is quoted (8+ characters: "bearer token" is prose)
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^" + _END + r"]{8,}"), r"\1\2" + REDACTED),
    # URLs: keep scheme://host:port, hide user:password@ and the path and query
    (
        re.compile(
            r"\b([a-z][a-z0-9+.-]*://)(?:[^/@" + _END + r"]*@)?([^/?#@" + _END + r"]+)[/?#][^" + _END + "]*"
        ),
        r"\1\2/" + REDACTED,
    ),
    (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/@" + _END + r"]*@"), r"\1" + REDACTED + "@"),
]
_protected: set[str] = set()
_protected_lock = threading.Lock()
_protected_pattern: re.Pattern[str] | None = None


def protect(*values: str | None) -> None:
    """Redact these exact values from every line from now on (secrets with no shape of
    their own: the admin token, master keys, a database password). Short values (< 8
    characters) are ignored: they would redact ordinary words."""
    global _protected_pattern
    with _protected_lock:
        _protected.update(v for v in values if v and len(v) >= 8)
        if _protected:
            alternatives = sorted(_protected, key=len, reverse=True)
            _protected_pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """The line with every secret-shaped substring and protected value replaced."""
    pattern = _protected_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return truncate(value)
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(v) for v in value]
    return value


def _cut_fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every string field (and any nested one) cut at MAX_TEXT."""
    return {key: value if key == "exc_info" else _cut(value) for key, value in event_dict.items()}


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_MAX_FRAMES = 30
# a database error quotes the offending value ('invalid input syntax ... "value"'): hidden
_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')


def _message(exc: BaseException) -> str:
    """What the exception says, cut; a database error without the values it quotes."""
    if isinstance(exc, StatementError):
        orig = exc.orig
        said = _QUOTED.sub('"…"', str(orig).split("\n", 1)[0]) if orig is not None else ""
        kind = f"{type(orig).__module__}.{type(orig).__qualname__}" if orig is not None else ""
        return truncate(f"({kind}) {said}\n[SQL: {truncate(str(exc.statement), 500)}]")
    if isinstance(exc, psycopg.Error):
        return truncate(_QUOTED.sub('"…"', str(exc)))
    return truncate(str(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or while handling, oldest first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain[::-1]


def _name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _frames(exc: BaseException) -> traceback.StackSummary:
    return traceback.extract_tb(exc.__traceback__, limit=-_MAX_FRAMES)


def _exception(exc_info: Any) -> BaseException | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and isinstance(exc_info[1], BaseException):
        return exc_info[1]
    return None


def describe(exc: BaseException) -> str:
    """One line for a log field: the exception's type and message (cut, values hidden)."""
    return f"{_name(exc)}: {_message(exc)}".replace("\n", " ")


def plain_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """ConsoleRenderer's exception formatter: Python's layout, without locals, messages cut."""
    sio.write("\n")
    chain = _chain(exc_info[1])
    for position, exc in enumerate(chain):
        if position:
            sio.write(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if exc.__cause__ is chain[position - 1]
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        sio.write("Traceback (most recent call last):\n")
        sio.write("".join(_frames(exc).format()))
        sio.write(f"{_name(exc)}: {_message(exc)}\n")


def structured_traceback(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor (JSON): ``exc_info`` becomes ``exception``, a list of the chained
    exceptions (oldest first), each with its type, message and frames; no locals."""
    exc = _exception(event_dict.pop("exc_info", None))
    if exc is not None:
        event_dict["exception"] = [
            {
                "exc_type": _name(e),
                "exc_value": _message(e),
                "frames": [
                    {"filename": f.filename, "lineno": f.lineno, "name": f.name, "line": f.line or ""}
                    for f in _frames(e)
                ],
            }
            for e in _chain(exc)
        ]
    return event_dict


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, then the one redaction step on the whole rendered line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr), as text or JSON lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    rendering: list[Any] = (
        [structured_traceback, _cut_fields, structlog.processors.JSONRenderer()]
        if json
        else [_cut_fields, structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_traceback)]
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        _RedactingFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_kalepool", False)]
    handler._kalepool = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
