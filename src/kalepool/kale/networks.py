"""Network profiles: the farm contract, the KALE asset and its token contract per network.

Mainnet and testnet values come from ``kale-contract.md`` §8.1. The devnet's values are
fixed so a devnet started anywhere is addressed the same way: its KALE issuer is derived
from a public seed (a devnet has no secrets worth keeping) and its farm contract id is a
hash of a fixed label.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from stellar_sdk import Asset, StrKey

from kalepool.errors import NetworkMismatch

NetworkName = Literal["mainnet", "testnet", "devnet"]

MAINNET_PASSPHRASE = "Public Global Stellar Network ; September 2015"
TESTNET_PASSPHRASE = "Test SDF Network ; September 2015"
DEVNET_PASSPHRASE = "kalepool devnet ; November 2026"

KALE_CODE = "KALE"

#: Seed of the devnet's KALE issuer (public on purpose: devnet only).
DEVNET_ISSUER_SEED = hashlib.sha256(b"kalepool devnet KALE issuer").digest()
DEVNET_ISSUER = "GD6PNQUJY53SNV5Q7GZFLFEEVH54QDJKIRRIVFSTTEOUJSFZSV44AQRX"
DEVNET_FARM_CONTRACT = StrKey.encode_contract(hashlib.sha256(b"kalepool devnet KALE farm").digest())


def sac_contract_id(code: str, issuer: str, passphrase: str) -> str:
    """The Stellar Asset Contract id of a classic asset on a network."""
    return str(Asset(code, issuer).contract_id(passphrase))


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """Everything that names the KALE farm on one network."""

    name: NetworkName
    passphrase: str
    rpc_urls: tuple[str, ...]
    farm_contract_id: str
    kale_issuer: str
    kale_sac_id: str
    block_interval: int = 300
    kale_code: str = KALE_CODE
    friendbot_url: str | None = None

    @property
    def kale_asset(self) -> Asset:
        return Asset(self.kale_code, self.kale_issuer)


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """What the network a gateway talks to is, as learnt from it and its profile
    (``FarmGateway.learn_network``): never a setting copied by hand between parts.

    ``ledger_seconds`` is the expected time between ledgers (a devnet reports its own;
    the public networks close one every ~5 s); it is not compared between parts."""

    network: str
    passphrase: str
    farm_contract_id: str
    kale_sac_id: str
    block_interval: int
    ledger_seconds: float

    #: the facts two parts of one pool must agree on
    SHARED: ClassVar[tuple[str, ...]] = ("passphrase", "farm_contract_id", "kale_sac_id", "block_interval")

    def shared(self) -> dict[str, Any]:
        """The facts two parts compare (what a pooler sends the backend)."""
        return {name: getattr(self, name) for name in self.SHARED}

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, theirs: dict[str, Any], *, here: str, there: str) -> None:
        """Raise :class:`NetworkMismatch` on the first shared fact ``theirs`` gives
        differently (facts it does not give are not compared)."""
        for name in self.SHARED:
            value = theirs.get(name)
            if value is not None and value != getattr(self, name):
                raise NetworkMismatch(name, getattr(self, name), value, here=here, there=there)



MAINNET = NetworkProfile(
    name="mainnet",
    passphrase=MAINNET_PASSPHRASE,
    rpc_urls=("https://mainnet.sorobanrpc.com",),
    farm_contract_id="CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA",
    kale_issuer="GBDVX4VELCDSQ54KQJYTNHXAHFLBCA77ZY2USQBM4CSHTTV7DME7KALE",
    kale_sac_id="CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV",
)

TESTNET = NetworkProfile(
    name="testnet",
    passphrase=TESTNET_PASSPHRASE,
    rpc_urls=("https://soroban-testnet.stellar.org",),
    farm_contract_id="CDSWUUXGPWDZG76ISK6SUCVPZJMD5YUV66J2FXFXFGDX25XKZJIEITAO",
    kale_issuer="GCHPTWXMT3HYF4RLZHWBNRF4MPXLTJ76ISHMSYIWCCDXWUYOQG5MR2AB",
    kale_sac_id="CAAVU2UQJLMZ3GUZFM56KVNHLPA3ZSSNR4VP2U53YBXFD2GI3QLIVHZZ",
    friendbot_url="https://friendbot.stellar.org",
)

DEVNET = NetworkProfile(
    name="devnet",
    passphrase=DEVNET_PASSPHRASE,
    rpc_urls=("http://127.0.0.1:8000/",),
    farm_contract_id=DEVNET_FARM_CONTRACT,
    kale_issuer=DEVNET_ISSUER,
    kale_sac_id=sac_contract_id(KALE_CODE, DEVNET_ISSUER, DEVNET_PASSPHRASE),
    friendbot_url="http://127.0.0.1:8000/friendbot",
)

PROFILES: dict[str, NetworkProfile] = {p.name: p for p in (MAINNET, TESTNET, DEVNET)}


def profile(name: str) -> NetworkProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"network: unknown network {name!r}; choose one of {sorted(PROFILES)}") from None
