"""Logging for the backend: structlog over the standard library, with secrets scrubbed.

Two nets keep custodial secrets out of every log line, whatever the code logs by mistake:
a structlog processor and a ``logging.Filter`` that replace anything shaped like a Stellar
secret seed (``S`` + 55 base32 characters), or a kalepool API key, by a fixed marker.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

__all__ = ["REDACTED", "SecretFilter", "configure_logging", "get_logger", "redact", "scrub_secrets"]

REDACTED = "[REDACTED]"
_SECRET = re.compile(r"\bS[A-Z2-7]{55}\b|\bkp_(?:pooler|farmer)_[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    return _SECRET.sub(REDACTED, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, bytes | bytearray | int | float | bool) or value is None:
        return value
    return redact(str(value))


def scrub_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact secret-shaped strings in every field."""
    return {key: _scrub(value) for key, value in event_dict.items()}


class SecretFilter(logging.Filter):
    """stdlib filter: redact secret-shaped strings in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


def configure_logging(level: str = "INFO", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Route structlog through stdlib logging to ``stream`` (stderr), scrubbed, as text or JSON."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_kalepool", False)]
    handler._kalepool = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
