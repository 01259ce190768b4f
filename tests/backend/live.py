"""The backend app served by a real uvicorn server on a loopback port, in a thread.

Its database engine is built and disposed inside the server's own event loop, so the test
talks to it over HTTP only (like a client would), and uvicorn's own error logging runs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain
from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.backend.runtime import uvicorn_options as runtime_uvicorn_options
from tests.backend.conftest import backend_settings


@contextmanager
def serving(
    database_url: str,
    keyring: Keyring,
    chain: Chain,
    *,
    uvicorn_options: dict[str, Any] | None = None,
    on_context: Callable[[BackendContext], None] | None = None,
    **settings: Any,
) -> Iterator[str]:
    """The app on ``http://127.0.0.1:<port>`` until the block ends; yields that URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    holder: list[uvicorn.Server] = []
    failure: list[BaseException] = []

    async def main() -> None:
        db = Database(database_url, pool_size=4)
        context = BackendContext.build(backend_settings(**settings), db=db, chain=chain, keyring=keyring)
        if on_context is not None:
            on_context(context)
        options: dict[str, Any] = {"lifespan": "off", **runtime_uvicorn_options(context.settings)}
        options.update(uvicorn_options or {})
        server = uvicorn.Server(uvicorn.Config(create_app(context), **options))
        holder.append(server)
        try:
            await server.serve(sockets=[sock])
        finally:
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
