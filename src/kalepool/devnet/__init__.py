"""The devnet: a local Stellar network that speaks Soroban JSON-RPC and runs the KALE
farm contract and the KALE token (Stellar Asset Contract) faithfully.

- :mod:`~kalepool.devnet.engine`: the ledger engine (:class:`Devnet`), its clock and controls
- :mod:`~kalepool.devnet.apply`: applying a ledger's transactions (fees, operations, refunds);
  :mod:`~kalepool.devnet.simulate`: ``simulateTransaction``
- :mod:`~kalepool.devnet.fees`: stellar-core's Soroban fee model and its settings table
- :mod:`~kalepool.devnet.events`: fee events and the SAC events of classic operations
- :mod:`~kalepool.devnet.transactions`: envelopes and validity checks;
  :mod:`~kalepool.devnet.classic`: classic operations
- :mod:`~kalepool.devnet.host`: footprints, contract calls, events, diagnostics, host errors;
  :mod:`~kalepool.devnet.auth`: authorization
- :mod:`~kalepool.devnet.farm`: the contract rules; :mod:`~kalepool.devnet.farm_host`: the
  farm bound to the host; :mod:`~kalepool.devnet.sac`: the token;
  :mod:`~kalepool.devnet.wasm`: the farm's code entry (its interface)
- :mod:`~kalepool.devnet.rpc`: the JSON-RPC methods (standard and ``devnet_*``);
  :mod:`~kalepool.devnet.jsonrpc`: JSON-RPC over HTTP; :mod:`~kalepool.devnet.history`:
  ``LedgerCloseMeta``, ``getLedgers``, ``getTransactions``
- :mod:`~kalepool.devnet.meta`: transaction meta and error rendering
- :mod:`~kalepool.devnet.server`: :class:`DevnetServer` (HTTP, friendbot, ledger timer)
- :mod:`~kalepool.devnet.testing`: :func:`running_devnet` for tests
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
