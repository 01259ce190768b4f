"""The backend app served by a real uvicorn server on a loopback port, in a thread.

Its database engine is built and disposed inside the server's own event loop, so the test
talks to it over HTTP only (like a client would), and uvicorn's own error logging runs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
import uvicorn

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain
from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.backend.logs import configure_logging
from kalepool.backend.runtime import uvicorn_options as runtime_uvicorn_options
from tests.backend.conftest import backend_settings


@contextmanager
def captured_logs(*, json: bool, level: str = "DEBUG") -> Iterator[io.StringIO]:
    """Everything the root logger receives, rendered by the backend's handler (console or
    JSON lines) into a string; the previous handlers come back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(level, json=json, stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = saved
        structlog.reset_defaults()


@contextmanager
def serving(
    database_url: str,
    keyring: Keyring,
    chain: Chain | Callable[[], Chain],
    *,
    uvicorn_options: dict[str, Any] | None = None,
    on_context: Callable[[BackendContext], None] | None = None,
    **settings: Any,
) -> Iterator[str]:
    """The app on ``http://127.0.0.1:<port>`` until the block ends; yields that URL.

    ``chain``: the chain, or a function making it inside the server's loop (a gateway's
    HTTP sessions belong to the loop that opens them)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    holder: list[uvicorn.Server] = []
    failure: list[BaseException] = []

    async def main() -> None:
        db = Database(database_url, pool_size=4)
        made = chain() if callable(chain) else chain
        context = BackendContext.build(backend_settings(**settings), db=db, chain=made, keyring=keyring)
        if on_context is not None:
            on_context(context)
        options: dict[str, Any] = {"lifespan": "off", **runtime_uvicorn_options(context.settings)}
        options.update(uvicorn_options or {})
        server = uvicorn.Server(uvicorn.Config(create_app(context), **options))
        holder.append(server)
        try:
            await server.serve(sockets=[sock])
        finally:
            close = getattr(made, "aclose", None)
            if close is not None:
                await close()
            await db.dispose()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"backend-http-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (holder and holder[0].started):
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the backend did not start: {failure!r}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        holder[0].should_exit = True
        thread.join(timeout=20)
        sock.close()
