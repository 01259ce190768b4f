"""What the routes share: settings, database, chain, custody, limits, metrics, workers' findings."""

from __future__ import annotations

from dataclasses import dataclass

from kalepool.backend.chain import Chain
from kalepool.backend.custody import Keyring, Signer
from kalepool.backend.db.session import Database
from kalepool.backend.metrics import Metrics
from kalepool.backend.ratelimit import RateLimiter
from kalepool.backend.services.common import ChainOps
from kalepool.backend.services.reconcile import ReconcileStatus
from kalepool.settings import BackendSettings

__all__ = ["BackendContext"]


@dataclass
class BackendContext:
    settings: BackendSettings
    db: Database
    chain: Chain
    keyring: Keyring
    signer: Signer
    limiter: RateLimiter
    anonymous_limiter: RateLimiter
    #: failed authentications per client address, across every credential it tries
    auth_failures: RateLimiter
    metrics: Metrics
    ops: ChainOps
    reconcile_status: ReconcileStatus

    @classmethod
    def build(
        cls,
        settings: BackendSettings,
        *,
        db: Database,
        chain: Chain,
        keyring: Keyring,
        metrics: Metrics | None = None,
    ) -> BackendContext:
        metrics = metrics or Metrics()
        signer = Signer(keyring)
        return cls(
            settings=settings,
            db=db,
            chain=chain,
            keyring=keyring,
            signer=signer,
            limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst),
            anonymous_limiter=RateLimiter(
                settings.anonymous_rate_limit_rps, settings.anonymous_rate_limit_burst
            ),
            auth_failures=RateLimiter(settings.auth_failures_per_minute / 60, settings.auth_failures_burst),
            metrics=metrics,
            ops=ChainOps(db=db, chain=chain, signer=signer, settings=settings, metrics=metrics),
            reconcile_status=ReconcileStatus(),
        )
