"""One typed settings tree for every kalepool process.

Sources, highest precedence first: explicit keyword arguments, environment variables
(``KALEPOOL_`` prefix, ``__`` between nested names, e.g. ``KALEPOOL_STELLAR__NETWORK``),
an optional TOML file (``--config FILE`` or ``KALEPOOL_CONFIG``), then the defaults below.

Amounts are stroops (1 KALE = 10,000,000), durations seconds, unless a name says otherwise.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kalepool.kale.networks import NetworkName, NetworkProfile, profile


class StellarSettings(BaseModel):
    """How to reach the chain. Unset fields fall back to the network profile.

    The network's timing (block interval, ledger time) is not a setting: every part
    learns it from the network (``FarmGateway.learn_network``), so no two parts can be
    told different values."""

    network: NetworkName = "devnet"
    rpc_urls: list[str] | None = Field(default=None, description="RPC URLs, tried in order")
    passphrase: str | None = None
    farm_contract_id: str | None = None
    kale_issuer: str | None = None
    kale_sac_id: str | None = None
    request_timeout: float = Field(default=10.0, gt=0, description="seconds per RPC request")
    poll_interval: float = Field(default=1.0, gt=0, description="seconds between getTransaction polls")
    tx_timeout: int = Field(default=60, gt=0, description="transaction validity window, seconds")
    fee_percentile: int = Field(default=90, ge=10, le=99, description="inclusion fee percentile")
    max_inclusion_fee: int = Field(default=10_000, ge=100, description="cap on the inclusion fee, stroops")
    launchtube_url: str | None = None
    launchtube_token: SecretStr | None = None

    def profile(self) -> NetworkProfile:
        """The network profile with this section's overrides applied."""
        base = profile(self.network)
        return NetworkProfile(
            name=base.name,
            passphrase=self.passphrase or base.passphrase,
            rpc_urls=tuple(self.rpc_urls) if self.rpc_urls else base.rpc_urls,
            farm_contract_id=self.farm_contract_id or base.farm_contract_id,
            kale_issuer=self.kale_issuer or base.kale_issuer,
            kale_sac_id=self.kale_sac_id or base.kale_sac_id,
            friendbot_url=base.friendbot_url,
        )


class DatabaseSettings(BaseModel):
    """PostgreSQL. With no URL, an embedded server is started under ``data_dir``."""

    url: SecretStr | None = Field(default=None, description="postgresql+psycopg://user:pw@host/db")
    data_dir: Path = Path(".kalepool/pgdata")
    pool_size: int = Field(default=10, ge=1)


class DevnetSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    ledger_seconds: float = Field(default=5.0, gt=0)
    time_scale: float = Field(default=1.0, gt=0, description="chain seconds per wall-clock second")
    block_interval: int = Field(default=300, ge=1)
    temp_ttl: int = Field(default=17_280, ge=1, description="ledgers a temporary entry lives")
    state_file: Path | None = None


class MinerSettings(BaseModel):
    threads: int | None = Field(default=None, ge=1, description="default: all cores")
    cpu_target: str | None = Field(default=None, description="force a numba CPU target, e.g. 'x86-64-v3'")


class BackendSettings(BaseModel):
    """The pool backend: HTTP server, custody keys, funding rule, rate limits.

    ``master_key`` (env ``KALEPOOL_BACKEND__MASTER_KEY``) or ``master_key_file`` holds the
    keys that encrypt custodial secrets: base64 of 32 random bytes each, comma- (or line-)
    separated, the first one encrypting new secrets and the others only decrypting old ones
    (``kalepool backend generate-master-key``, ``kalepool backend rotate-master-key``).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    master_key: SecretStr | None = Field(default=None, description="base64 key(s), first encrypts")
    master_key_file: Path | None = Field(default=None, description="file with one base64 key a line")
    admin_token: SecretStr | None = Field(default=None, description="bearer token of the operator API")
    min_xlm_balance: int = Field(
        default=25_000_000,
        ge=0,
        description="stroops of XLM a custodial account needs to count as funded (reserves + fees)",
    )
    plant_concurrency: int = Field(
        default=512,
        ge=1,
        description="plants (and harvests) in flight per request at most: a large pooler's farmers "
        "are planted in a ledger or two",
    )
    plant_retry_seconds: float = Field(
        default=20.0,
        ge=0,
        description="seconds a plant-request keeps retrying a farmer's transient failure (RPC timeout, "
        "a sequence number another process used) before answering it failed",
    )
    rate_limit_rps: float = Field(default=20.0, gt=0, description="requests/s per API key or token")
    rate_limit_burst: int = Field(default=100, ge=1, description="bucket size per API key or token")
    anonymous_rate_limit_rps: float = Field(default=2.0, gt=0, description="requests/s per client IP")
    anonymous_rate_limit_burst: int = Field(default=20, ge=1)
    workers: bool = Field(default=True, description="run the background workers in the API process")
    platform_fee_bps: int = Field(
        default=100, ge=0, le=10_000, description="the platform's share of every reward, basis points"
    )
    min_fee_xlm: int = Field(
        default=1_000_000,
        ge=0,
        description="spendable XLM (stroops) a custodial account needs before a plant or harvest is sent",
    )
    claim_seconds: float = Field(
        default=30.0,
        gt=0,
        description="lease of a claimed pail, renewed every third of it while its holder works",
    )
    in_progress_wait: float = Field(
        default=45.0,
        ge=0,
        description="seconds a request waits for pails another request holds (> claim_seconds)",
    )
    harvest_interval: float = Field(default=30.0, gt=0, description="seconds between auto-harvester runs")
    harvest_batch: int = Field(default=500, ge=1, description="pails one auto-harvester run claims at most")
    auto_harvest_lag_blocks: int = Field(
        default=1,
        ge=0,
        description="the auto-harvester leaves the block that just closed to its pooler's harvest-request "
        "(and out of the next block's plants): it harvests blocks at least this many blocks older",
    )
    reconcile_interval: float = Field(default=300.0, gt=0, description="seconds between reconciler runs")
    payout_interval: float = Field(default=600.0, gt=0, description="seconds between payout worker runs")
    platform_wallet: str | None = Field(
        default=None,
        description="the operator's Stellar account (G...) the platform's fees are sent to; unset: they stay",
    )
    payout_min_amount: int = Field(
        default=100_000_000, ge=1, description="stroops of KALE a payout must reach (default 10 KALE)"
    )
    fee_payout_min_source: int = Field(
        default=10_000_000,
        ge=1,
        description="stroops of KALE a custodial account must hold for a pooler or the platform before "
        "they are sent from it (smaller amounts wait; default 1 KALE)",
    )
    payout_retry_seconds: float = Field(
        default=3600.0, ge=0, description="seconds before a farmer's failed payout is tried again"
    )
    payout_transient_retry_seconds: float = Field(
        default=10.0,
        ge=0,
        description="seconds before a payout that failed for a transient reason (a sequence number "
        "another process used, an RPC timeout) is tried again",
    )
    payout_batch: int = Field(default=500, ge=1, description="farmers one payout run looks at most")
    payout_concurrency: int = Field(
        default=8,
        ge=1,
        description="farmers' payouts in flight at once (each from its own custodial account; "
        "each holds two database connections while it is sent: keep it within database.pool_size)",
    )
    # the web dashboard (served by the API process on the same port)
    dashboard: bool = Field(default=True, description="serve the web dashboard at / beside the API")
    dashboard_refresh_seconds: float = Field(
        default=5.0, gt=0, description="how often the dashboard's pages refresh their figures"
    )
    signin_rate_limit_per_minute: float = Field(
        default=10.0, gt=0, description="dashboard sign-in attempts per minute per client IP"
    )
    signin_rate_limit_burst: int = Field(default=10, ge=1, description="sign-in attempts at once per IP")
    pooler_offline_seconds: float = Field(
        default=180.0, gt=0, description="a pooler without a heartbeat for this long counts as offline"
    )
    # limits beyond the per-credential buckets
    auth_failures_per_minute: float = Field(
        default=10.0,
        gt=0,
        description="failed authentications per minute per client address, whatever credentials it tries",
    )
    auth_failures_burst: int = Field(
        default=20, ge=1, description="failed authentications at once per client address before 429"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks of the reverse proxies whose X-Forwarded-For is believed "
        "(none by default: the client address is the connection's)",
    )
    health_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long /health/db and /health/stellar reuse their last check"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token /metrics asks for (unset: /metrics is open)"
    )

    @model_validator(mode="after")
    def _check_admin_token(self) -> BackendSettings:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and (len(token) < 32 or len(set(token)) < 16):
            raise ValueError(
                "backend.admin_token must be at least 32 random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"backend.trusted_proxies: {proxy!r} is not an address or network") from None
        if self.platform_wallet is not None:
            from stellar_sdk import StrKey

            if not StrKey.is_valid_ed25519_public_key(self.platform_wallet):
                raise ValueError("backend.platform_wallet must be a Stellar account (G...)")
        return self


class PoolerSettings(BaseModel):
    """The mining-machine service (``kalepool pooler run``).

    The pooler's own Stellar secret (``S...``) comes from ``secret_file`` (one line) or
    ``secret`` (env ``KALEPOOL_POOLER__SECRET``); it pays the fees of its work
    transactions and is never logged. Times are seconds of ledger (chain) time unless
    a name says otherwise.
    """

    backend_url: str = Field(default="http://127.0.0.1:8080", description="the pool backend's base URL")
    api_key: SecretStr | None = Field(default=None, description="the pooler's API key (kp_pooler_...)")
    pooler_id: str | None = Field(default=None, description="default: asked from the backend")
    secret: SecretStr | None = Field(default=None, description="the pooler's own S... secret")
    secret_file: Path | None = Field(default=None, description="file holding the S... secret")
    state_file: Path = Field(default=Path(".kalepool/pooler-state.json"), description="resume state")
    poll_interval: float = Field(default=5.0, gt=0, description="seconds between farm reads")
    max_farmers: int | None = Field(default=None, ge=1, description="plant and mine at most this many")
    threads: int | None = Field(default=None, ge=1, description="mining threads (default: miner.threads)")
    split: str = Field(default="fair", pattern="^(fair|reward)$", description="hash sharing policy")
    work_margin_ledgers: int = Field(
        default=3, ge=1, description="ledgers kept free before the rollover, beyond the submissions"
    )
    work_margin_seconds: float = Field(default=2.0, ge=0, description="extra safety before the rollover")
    early_work_fraction: float | None = Field(
        default=0.5, gt=0, lt=1, description="submit a first work at this fraction of the window (None: off)"
    )
    min_mine_seconds: float = Field(
        default=10.0, ge=0, description="plant into a running block only with this much mining time left"
    )
    channels: int = Field(default=4, ge=1, le=1000, description="accounts submitting works, at least")
    max_channels: int = Field(default=500, ge=1, le=1000, description="accounts submitting works, at most")
    submit_rounds: int = Field(
        default=6,
        ge=1,
        description="ledgers one block's works may take to send: channels = farmers / submit_rounds",
    )
    channel_xlm: int = Field(default=50_000_000, ge=20_000_000, description="stroops given to a channel")
    request_timeout: float = Field(default=120.0, gt=0, description="seconds per backend request")
    retries: int = Field(default=5, ge=0, description="retries of a failed backend request")
    heartbeat_interval: float = Field(default=30.0, gt=0)
    harvest_attempts: int = Field(default=3, ge=1, description="harvest-requests per block before leaving it")
    drain_timeout: float | None = Field(
        default=None,
        gt=0,
        description="with --blocks: seconds to wait for the rollover the last harvests need (default: "
        "two block intervals); then the backend's auto-harvester covers them",
    )


class FarmerSettings(BaseModel):
    """``kalepool farmer ...``: one farmer's access to the pool's API.

    ``kalepool farmer register --save FILE`` writes the farmer's id and token to a file
    (mode 0600) that the other commands read (``--credentials FILE``, or
    ``farmer.credentials_file``); ``farmer.farmer_id`` and ``farmer.token`` (env
    ``KALEPOOL_FARMER__TOKEN``) take precedence over the file.
    """

    backend_url: str = Field(default="http://127.0.0.1:8080", description="the pool backend's base URL")
    credentials_file: Path | None = Field(default=None, description="written by `farmer register --save`")
    farmer_id: str | None = None
    token: SecretStr | None = Field(default=None, description="the farmer's token (kp_farmer_...)")


class DemoSettings(BaseModel):
    """``kalepool demo``: the whole pool on one machine."""

    farmers: int = Field(default=8, ge=1)
    blocks: int = Field(default=3, ge=1)
    poolers: int = Field(default=1, ge=1)
    block_interval: int = Field(default=30, ge=10)
    ledger_seconds: float = Field(default=1.0, gt=0)
    work_dir: Path | None = Field(default=None, description="default: a temporary directory")
    timeout: float | None = Field(default=None, gt=0, description="give up after this many seconds")


class Settings(BaseSettings):
    """The whole configuration of a kalepool process."""

    model_config = SettingsConfigDict(
        env_prefix="KALEPOOL_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
        title="settings",
    )

    config_file: ClassVar[Path | None] = None

    stellar: StellarSettings = StellarSettings()
    database: DatabaseSettings = DatabaseSettings()
    devnet: DevnetSettings = DevnetSettings()
    miner: MinerSettings = MinerSettings()
    backend: BackendSettings = BackendSettings()
    pooler: PoolerSettings = PoolerSettings()
    farmer: FarmerSettings = FarmerSettings()
    demo: DemoSettings = DemoSettings()
    log_level: str = "INFO"
    log_json: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_network(self) -> Settings:
        self.stellar.profile()  # validates the network name and overrides
        return self

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets replaced by ``'**********'``."""
        return self.model_dump(mode="json")


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from arguments, the environment and an optional TOML file."""
    path = config_file or os.environ.get("KALEPOOL_CONFIG")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")

    class _Loaded(Settings):
        config_file: ClassVar[Path | None] = Path(path) if path else None

    _Loaded.__name__ = "Settings"
    return _Loaded(**overrides)
