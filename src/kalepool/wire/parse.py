"""Reading a peer's answer: unknown fields are an error in tests, a warning in production.

Every wire model allows extra fields (a newer peer may send more); :func:`parse` then
walks the parsed model and reports what it did not know: raises :class:`UnknownFields`
when ``strict`` (tests set it, so a drift between the two sides fails there), logs one
warning otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from kalepool.errors import KalePoolError

__all__ = ["STRICT_ENV", "UnknownFields", "parse", "unknown_fields"]

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)

#: ``KALEPOOL_WIRE_STRICT=1``: unknown fields raise (the test suite sets it).
STRICT_ENV = "KALEPOOL_WIRE_STRICT"


class UnknownFields(KalePoolError):
    """A peer's answer carried fields this version does not know (strict mode)."""

    code = "unknown_fields"


def unknown_fields(model: BaseModel, path: str = "") -> Iterator[str]:
    """The dotted paths of every field ``model`` (and the models inside it) did not declare."""
    for name in model.model_extra or {}:
        yield f"{path}{name}"
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name), f"{path}{name}")


def _walk(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from unknown_fields(value, path + ".")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")


def parse(model: type[M], data: Any, *, strict: bool | None = None) -> M:
    """``data`` (decoded JSON) as ``model``; see the module docstring for unknown fields."""
    parsed = model.model_validate(data)
    extra = sorted(set(unknown_fields(parsed)))
    if extra:
        if strict is None:
            strict = os.environ.get(STRICT_ENV, "") not in ("", "0", "false")
        if strict:
            raise UnknownFields(f"{model.__name__}: unknown fields {', '.join(extra[:10])}")
        log.warning("wire.unknown_fields", model=model.__name__, fields=extra[:10])
    return parsed
