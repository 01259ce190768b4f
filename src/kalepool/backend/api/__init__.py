"""The HTTP API (FastAPI): ``create_app`` builds it from its parts."""

from kalepool.backend.api.app import BackendContext, create_app

__all__ = ["BackendContext", "create_app"]
