"""The gateway's exception tree, one branch of :class:`kalepool.errors.KalePoolError`.

::

    KalePoolError
    ├── GatewayError                  anything the chain gateway reports
    │   ├── NetworkError              no usable answer from any RPC (transport, 5xx, bad JSON)
    │   │   ├── RpcTimeout            a request ran past ``request_timeout``
    │   │   └── RpcError              a JSON-RPC error object (``rpc_code``, ``data``)
    │   ├── SimulationFailed          simulateTransaction failed for a non-contract reason
    │   ├── AccountNotFound           the source account does not exist on chain
    │   ├── TxRejected                sendTransaction said ERROR: ``result_code`` (txBAD_SEQ …)
    │   ├── TxThrottled               TRY_AGAIN_LATER on every bounded retry; never queued
    │   ├── TxFailed                  applied in a ledger but failed, not by a contract error
    │   ├── RaceLost                  the chain moved under a simulated transaction
    │   ├── TxExpired                 a signed transaction's time bound passed unapplied
    │   └── TxInDoubt                 the fate of a sent transaction could not be learnt
    └── ContractError (kalepool.kale.errors)
        ├── FarmError(code)           the farm contract's ``Error(Contract, #N)``
        └── TokenError(code)          the KALE token (SAC)'s ``Error(Contract, #N)``

Contract errors are raised as :class:`~kalepool.kale.errors.FarmError` /
:class:`~kalepool.kale.errors.TokenError`, attributed by the contract that raised them
(the diagnostic events), never by the number alone.

Every failure that concerns a signed transaction carries it as ``.tx`` (a
:class:`TxAttempt`: hash, envelope, and ledger and fee charged once applied);
:func:`attempt_of` reads it from any exception, contract errors included.
stellar-sdk exception types never cross the gateway's boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from kalepool.errors import KalePoolError

__all__ = [
    "AccountNotFound",
    "GatewayError",
    "NetworkError",
    "RaceLost",
    "RpcError",
    "RpcTimeout",
    "SimulationFailed",
    "TxAttempt",
    "TxExpired",
    "TxFailed",
    "TxInDoubt",
    "TxRejected",
    "TxThrottled",
    "attach_attempt",
    "attempt_of",
]


@dataclass(frozen=True, slots=True)
class TxAttempt:
    """A signed transaction as far as the gateway followed it.

    ``ledger`` and ``fee_charged`` (stroops) are set once it was applied (success or
    failure); ``envelope_xdr`` is what :meth:`FarmGateway.resume` needs to follow it again.
    """

    tx_hash: str
    envelope_xdr: str
    ledger: int | None = None
    fee_charged: int | None = None


class GatewayError(KalePoolError):
    """Base of every failure the Stellar gateway reports (other than contract errors)."""

    code = "gateway_error"

    def __init__(self, message: str, *, tx: TxAttempt | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tx = tx

    @property
    def tx_hash(self) -> str | None:
        return self.tx.tx_hash if self.tx else None


class NetworkError(GatewayError):
    """No usable answer from any configured RPC: connection failure, HTTP error, bad body."""

    code = "network_error"

    def __init__(self, message: str, *, url: str | None = None, tx: TxAttempt | None = None) -> None:
        super().__init__(message, tx=tx)
        self.url = url


class RpcTimeout(NetworkError):
    """A request got no answer within the configured timeout."""

    code = "rpc_timeout"


class RpcError(NetworkError):
    """The RPC answered with a JSON-RPC error object (e.g. -32602 invalid params)."""

    code = "rpc_error"

    def __init__(
        self,
        rpc_code: int,
        message: str,
        *,
        data: str | None = None,
        url: str | None = None,
        tx: TxAttempt | None = None,
    ) -> None:
        super().__init__(f"RPC error {rpc_code}: {message}", url=url, tx=tx)
        self.rpc_code = rpc_code
        self.data = data


class SimulationFailed(GatewayError):
    """``simulateTransaction`` failed, and not with an attributable contract error.

    ``error`` is the RPC's error text (host errors, budget, a needed restore, ...).
    """

    code = "simulation_failed"

    def __init__(self, error: str, *, events: tuple[str, ...] = ()) -> None:
        super().__init__(f"simulation failed: {error}")
        self.error = error
        self.events = events


class AccountNotFound(GatewayError):
    """A transaction's source account does not exist (fund it first)."""

    code = "account_not_found"

    def __init__(self, account: str) -> None:
        super().__init__(f"account {account} does not exist")
        self.account = account


class TxRejected(GatewayError):
    """``sendTransaction`` returned ERROR; ``result_code`` is the ``errorResultXdr`` code.

    ``result_code`` is the XDR name, e.g. ``"txBAD_SEQ"``, ``"txINSUFFICIENT_FEE"``,
    ``"txBAD_AUTH"``; ``op_codes`` the per-operation codes when there are any. The
    transaction never entered a ledger: no fee was charged, the sequence is unused.
    """

    code = "tx_rejected"

    def __init__(
        self, result_code: str, *, op_codes: tuple[str, ...] = (), tx: TxAttempt | None = None
    ) -> None:
        detail = f" ({', '.join(op_codes)})" if op_codes else ""
        super().__init__(f"transaction rejected: {result_code}{detail}", tx=tx)
        self.result_code = result_code
        self.op_codes = op_codes


class TxThrottled(GatewayError):
    """``sendTransaction`` kept answering TRY_AGAIN_LATER; the transaction was never queued."""

    code = "tx_throttled"


class TxFailed(GatewayError):
    """The transaction was applied and failed, without a contract error to name.

    ``result_code`` is the transaction result (``txFAILED``), ``op_codes`` the operation
    results (e.g. ``INVOKE_HOST_FUNCTION_TRAPPED``); ``host_error`` the first host error
    of the diagnostic events when there is one, e.g. ``"Error(Budget, ExceededLimit)"``.
    """

    code = "tx_failed"

    def __init__(
        self,
        result_code: str,
        *,
        op_codes: tuple[str, ...] = (),
        host_error: str | None = None,
        tx: TxAttempt | None = None,
    ) -> None:
        parts = [result_code, *op_codes] + ([host_error] if host_error else [])
        super().__init__(f"transaction failed: {', '.join(parts)}", tx=tx)
        self.result_code = result_code
        self.op_codes = op_codes
        self.host_error = host_error


class RaceLost(GatewayError):
    """The chain moved between simulation and application (a block rollover, typically).

    Raised for a transaction that failed on its footprint or resources (the state it
    touched changed), and for an action the gateway declined to retry because what the
    caller asked for is no longer possible (``work`` for a block that has closed).
    ``index`` is the block the caller's transaction was meant for, when known.
    """

    code = "race_lost"

    def __init__(self, message: str, *, index: int | None = None, tx: TxAttempt | None = None) -> None:
        super().__init__(message, tx=tx)
        self.index = index


class TxExpired(GatewayError):
    """A signed transaction was never applied and its time bound has passed.

    Its sequence number was not consumed: the action can be built and signed again.
    """

    code = "tx_expired"


class TxInDoubt(GatewayError):
    """A transaction may have been sent, and its fate could not be learnt (RPC down).

    Do not sign a replacement: resume it with ``FarmGateway.resume(tx.tx_hash,
    tx.envelope_xdr)`` once the network answers again. ``expired`` is True when it can
    no longer be applied (its time bound has passed) though whether it was is unknown.
    """

    code = "tx_in_doubt"

    def __init__(self, message: str, *, tx: TxAttempt | None = None, expired: bool = False) -> None:
        super().__init__(message, tx=tx)
        self.expired = expired


_ATTEMPT_ATTR = "tx"


def attach_attempt(exc: BaseException, tx: TxAttempt) -> BaseException:
    """Record ``tx`` on ``exc`` (contract errors carry it the same way as gateway errors)."""
    setattr(exc, _ATTEMPT_ATTR, tx)
    return exc


def attempt_of(exc: BaseException) -> TxAttempt | None:
    """The transaction an exception from the gateway concerns, when there is one."""
    tx = getattr(exc, _ATTEMPT_ATTR, None)
    return tx if isinstance(tx, TxAttempt) else None
