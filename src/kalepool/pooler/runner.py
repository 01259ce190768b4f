"""Assembling a pooler process from the settings (what ``kalepool pooler run`` runs).

:func:`load_keypair` reads the pooler's own secret (never logged, never echoed);
:func:`build_service` wires the gateway, the backend client and the service;
:func:`run_until_stopped` runs it with SIGINT/SIGTERM handlers: the first signal stops
gracefully (the block in flight is finished or handed back), a second one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from stellar_sdk import Keypair

from kalepool.errors import ConfigError
from kalepool.miner import default_threads, load_kernel
from kalepool.pooler.client import BackendClient
from kalepool.pooler.service import PoolerService
from kalepool.settings import Settings
from kalepool.stellar import FarmGateway

__all__ = ["build_service", "discover_network_timing", "load_keypair", "run_until_stopped"]


async def discover_network_timing(
    gateway: FarmGateway, *, network: str, timeout: float = 10.0
) -> tuple[int, float]:
    """``(block_interval, ledger_seconds)`` of the network: the profile's, or what a
    devnet reports of itself (``devnet_info``)."""
    interval, ledger_seconds = gateway.profile.block_interval, 5.0
    if network != "devnet":
        return interval, ledger_seconds
    body = {"jsonrpc": "2.0", "id": 1, "method": "devnet_info"}
    async with httpx.AsyncClient(timeout=timeout) as http:
        for url in gateway.profile.rpc_urls:
            try:
                response = await http.post(url, json=body)
                info = response.json().get("result") or {}
            except (httpx.HTTPError, ValueError):
                continue
            if "block_interval" in info:
                return int(info["block_interval"]), float(info.get("ledger_seconds") or ledger_seconds)
    return interval, ledger_seconds


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
        interval, ledger_seconds = await discover_network_timing(gateway, network=settings.stellar.network)
        override = ps.block_interval or settings.stellar.block_interval
        if override is not None:
            interval = override
        gateway.profile = dataclasses.replace(gateway.profile, block_interval=interval)
    except BaseException:
        await gateway.close()
        raise
    client = BackendClient(
        ps.backend_url, ps.api_key.get_secret_value(), timeout=ps.request_timeout, retries=ps.retries
    )
    client.pooler_id = ps.pooler_id  # None: asked from the backend at start
    threads = ps.threads or settings.miner.threads or default_threads()
    return PoolerService(
        ps,
        gateway=gateway,
        client=client,
        keypair=keypair,
        interval=interval,
        ledger_seconds=ledger_seconds,
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
