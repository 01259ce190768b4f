"""The Stellar gateway: every chain read and action of the pool, over Soroban RPC.

- :mod:`~kalepool.stellar.gateway`: :class:`FarmGateway`, the façade (reads and actions)
- :mod:`~kalepool.stellar.outcomes`: the typed results it returns
- :mod:`~kalepool.stellar.errors`: the failures it raises (plus ``FarmError``/``TokenError``)
- :mod:`~kalepool.stellar.submit`: the simulate → sign → record → send → poll pipeline
- :mod:`~kalepool.stellar.rpc`: Soroban RPC with failover, timeouts and retries
- :mod:`~kalepool.stellar.fees`, :mod:`~kalepool.stellar.sequences`,
  :mod:`~kalepool.stellar.decode`, :mod:`~kalepool.stellar.launchtube`
"""

from kalepool.kale.errors import ContractError, FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.stellar.errors import (
    AccountNotFound,
    GatewayError,
    NetworkError,
    RaceLost,
    RpcError,
    RpcTimeout,
    SimulationFailed,
    TxAttempt,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
    TxThrottled,
    attempt_of,
)
from kalepool.stellar.fees import FeePolicy
from kalepool.stellar.gateway import FarmGateway
from kalepool.stellar.launchtube import LaunchtubeError, LaunchtubeSubmitter
from kalepool.stellar.outcomes import (
    AccountInfo,
    FarmState,
    HarvestOutcome,
    PailState,
    Payment,
    PaymentOutcome,
    PlantOutcome,
    TrustlineOutcome,
    TxOutcome,
    WorkOutcome,
)
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.submit import OnSigned, RpcSubmitter, Submitter

__all__ = [
    "AccountInfo",
    "AccountNotFound",
    "ContractError",
    "FarmError",
    "FarmErrorCode",
    "FarmGateway",
    "FarmState",
    "FeePolicy",
    "GatewayError",
    "HarvestOutcome",
    "LaunchtubeError",
    "LaunchtubeSubmitter",
    "NetworkError",
    "OnSigned",
    "PailState",
    "Payment",
    "PaymentOutcome",
    "PlantOutcome",
    "RaceLost",
    "RpcClient",
    "RpcError",
    "RpcSubmitter",
    "RpcTimeout",
    "SimulationFailed",
    "Submitter",
    "TokenError",
    "TokenErrorCode",
    "TrustlineOutcome",
    "TxAttempt",
    "TxExpired",
    "TxFailed",
    "TxInDoubt",
    "TxOutcome",
    "TxRejected",
    "TxThrottled",
    "WorkOutcome",
    "attempt_of",
]
