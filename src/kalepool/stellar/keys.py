"""Keypairs people hold in files: a new one written where only its owner can read it,
and funding from a test network's friendbot."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from stellar_sdk import Keypair

from kalepool.errors import ConfigError
from kalepool.kale.networks import NetworkProfile
from kalepool.stellar.errors import GatewayError
from kalepool.stellar.rpc import RpcClient

__all__ = ["fund_from_friendbot", "new_secret_file"]


def new_secret_file(path: Path) -> Keypair:
    """A new random keypair, its ``S...`` secret written to ``path`` (created with mode
    0600, never over an existing file); the secret is not returned anywhere else."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such directory")
    keypair = Keypair.random()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: a secret file is never overwritten") from None
    with os.fdopen(fd, "w") as out:
        out.write(keypair.secret + "\n")
    return keypair


async def fund_from_friendbot(profile: NetworkProfile, address: str, *, timeout: float = 60.0) -> None:
    """Create and fund ``address`` from the network's friendbot (the devnet's, testnet's)."""
    async with RpcClient(profile.rpc_urls, timeout=timeout) as rpc:
        url = await rpc.friendbot_url() or profile.friendbot_url
    if not url:
        raise ConfigError(f"the {profile.name} network has no friendbot: fund {address} from another account")
    async with httpx.AsyncClient(timeout=timeout) as http:
        try:
            response = await http.get(url, params={"addr": address})
        except httpx.HTTPError as exc:
            raise GatewayError(f"the friendbot at {url} cannot be reached: {exc}") from None
    if response.status_code != 200:
        raise GatewayError(f"the friendbot refused {address}: {response.text[:200]}")
