"""schemathesis hooks for the authenticated fuzzing run (``SCHEMATHESIS_HOOKS``).

The credentials come from ``$KALEPOOL_FUZZ_CREDENTIALS`` (JSON: admin token, a pooler's id
and key, a farmer's id and token). Each operation gets the credential of its role, and a
generated UUID where the caller's own id belongs (a body's ``pooler_id``, a path's
``farmer_id``) becomes the caller's, so the fuzzed requests reach past the ownership checks.
Values that are not UUIDs are left alone: the negative cases stay negative.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import schemathesis

CREDENTIALS: dict[str, str] = json.loads(os.environ["KALEPOOL_FUZZ_CREDENTIALS"])


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _bearer_auth(path_regex: str, credential: str) -> None:
    """Register ``Authorization: Bearer <credential>`` for the operations under ``path_regex``."""

    class Bearer:
        def get(self, case: Any, context: Any) -> str:
            return CREDENTIALS[credential]

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"

    schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex=path_regex)(Bearer)


_bearer_auth("^/api/v1/(poolers|blocks)", "admin_token")
_bearer_auth("^/api/v1/pooler/", "pooler_key")
_bearer_auth("^/api/v1/farmers/", "farmer_token")


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and _is_uuid(body.get("pooler_id")):
        return {**body, "pooler_id": CREDENTIALS["pooler_id"]}
    return body


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    if path_parameters and _is_uuid(path_parameters.get("farmer_id")):
        return {**path_parameters, "farmer_id": CREDENTIALS["farmer_id"]}
    return path_parameters
