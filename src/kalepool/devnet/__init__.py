"""The devnet: a local Stellar network that speaks Soroban JSON-RPC and runs the KALE
farm contract and the KALE token (Stellar Asset Contract) faithfully.

- :mod:`~kalepool.devnet.engine`: the ledger engine (:class:`Devnet`) and its controls
- :mod:`~kalepool.devnet.rpc`: the JSON-RPC façade (standard methods and ``devnet_*``)
- :mod:`~kalepool.devnet.server`: :class:`DevnetServer` (HTTP, friendbot, ledger timer)
- :mod:`~kalepool.devnet.testing`: :func:`running_devnet` for tests
- :mod:`~kalepool.devnet.farm`: the contract rules; :mod:`~kalepool.devnet.farm_host`: the
  farm bound to the host; :mod:`~kalepool.devnet.sac`: the token
- :mod:`~kalepool.devnet.host`: footprints, contract calls, events, host errors;
  :mod:`~kalepool.devnet.auth`: authorization
- :mod:`~kalepool.devnet.transactions`: envelopes, validity checks, classic operations
- :mod:`~kalepool.devnet.meta`: transaction meta and error rendering
- :mod:`~kalepool.devnet.codec`, :mod:`~kalepool.devnet.ledger`: entries and ledger state
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
