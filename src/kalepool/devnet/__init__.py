"""The devnet: a local Stellar network that speaks Soroban JSON-RPC and runs the KALE
farm contract and the KALE token (Stellar Asset Contract) faithfully.

- :mod:`~kalepool.devnet.engine`: the ledger engine (:class:`Devnet`) and its controls
- :mod:`~kalepool.devnet.rpc`: the JSON-RPC façade (standard methods and ``devnet_*``)
- :mod:`~kalepool.devnet.server`: :class:`DevnetServer` (HTTP, friendbot, ledger timer)
- :mod:`~kalepool.devnet.testing`: :func:`running_devnet` for tests
- :mod:`~kalepool.devnet.farm`: the contract rules; :mod:`~kalepool.devnet.sac`: the token
- :mod:`~kalepool.devnet.host`: footprints, authorization, contract errors
- :mod:`~kalepool.devnet.state`: the ``--state`` file

See ``docs/devnet.md``.
"""

from kalepool.devnet.engine import (
    Devnet,
    DevnetConfig,
    DevnetError,
    homesteader_keypair,
    issuer_keypair,
    root_keypair,
)
from kalepool.devnet.server import DevnetServer

__all__ = [
    "Devnet",
    "DevnetConfig",
    "DevnetError",
    "DevnetServer",
    "homesteader_keypair",
    "issuer_keypair",
    "root_keypair",
]
