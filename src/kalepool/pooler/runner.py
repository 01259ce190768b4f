"""Assembling a pooler process from the settings (what ``kalepool pooler run`` runs).

:func:`load_keypair` reads the pooler's own secret (never logged, never echoed);
:func:`build_service` wires the gateway, the backend client and the service;
:func:`run_until_stopped` runs it with SIGINT/SIGTERM handlers: the first signal stops
gracefully (the block in flight is finished or handed back), a second one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from stellar_sdk import Keypair

from kalepool.errors import ConfigError
from kalepool.miner import default_threads, load_kernel
from kalepool.pooler.client import BackendClient
from kalepool.pooler.service import PoolerService
from kalepool.settings import Settings
from kalepool.stellar import FarmGateway
from kalepool.wire import pooler as w

__all__ = ["build_service", "load_keypair", "run_until_stopped"]


def load_keypair(secret: str | None, secret_file: Path | None) -> Keypair:
    """The pooler's keypair from its ``S...`` secret (given, or the first line of a file)."""
    text = secret
    if text is None and secret_file is not None:
        path = Path(secret_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"pooler secret file not found: {path}")
        words = path.read_text().split()
        text = words[0] if words else ""
    if not text:
        raise ConfigError("the pooler's Stellar secret is missing: set pooler.secret_file (--secret-file)")
    try:
        return Keypair.from_secret(text.strip())
    except Exception:  # the SDK's error would echo the value
        raise ConfigError("the pooler secret is not a valid Stellar secret seed (S...)") from None


async def build_service(
    settings: Settings,
    *,
    keypair: Keypair,
    max_blocks: int | None = None,
) -> PoolerService:
    """The service for these settings (the caller runs and closes it)."""
    ps = settings.pooler
    if ps.api_key is None:
        raise ConfigError("the pooler's API key is missing: set pooler.api_key (KALEPOOL_POOLER__API_KEY)")
    gateway = FarmGateway.from_settings(settings.stellar)
    try:
        facts = await gateway.learn_network()  # the backend compares them on every request
    except BaseException:
        await gateway.close()
        raise
    client = BackendClient(
        ps.backend_url, ps.api_key.get_secret_value(), timeout=ps.request_timeout, retries=ps.retries
    )
    client.pooler_id = ps.pooler_id  # None: asked from the backend at start
    client.network = w.NetworkFacts(**facts.shared())
    threads = ps.threads or settings.miner.threads or default_threads()
    return PoolerService(
        ps,
        gateway=gateway,
        client=client,
        keypair=keypair,
        interval=facts.block_interval,
        ledger_seconds=facts.ledger_seconds,
        threads=threads,
        max_blocks=max_blocks,
    )


async def run_until_stopped(
    service: PoolerService,
    *,
    cpu_target: str | None = None,
    alongside: Callable[[PoolerService], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run the service until it is done or signalled; ``alongside`` runs beside it (the
    terminal status) and is cancelled at the end. Closes the gateway and the client."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            service.request_stop()
        elif main is not None:
            main.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    side = asyncio.create_task(alongside(service)) if alongside is not None else None
    try:
        await asyncio.to_thread(load_kernel, cpu_target)
        await service.run()
    finally:
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side
        for sig in installed:
            loop.remove_signal_handler(sig)
        await service.gateway.close()
        await service.client.close()
