"""Settings: profiles, SAC derivation, env and TOML sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalepool.kale import networks
from kalepool.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KALEPOOL_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("profile", [networks.MAINNET, networks.TESTNET, networks.DEVNET])
def test_sac_id_is_derived_from_the_asset(profile: networks.NetworkProfile) -> None:
    derived = networks.sac_contract_id(profile.kale_code, profile.kale_issuer, profile.passphrase)
    assert derived == profile.kale_sac_id


def test_published_sac_ids() -> None:
    assert networks.sac_contract_id("KALE", networks.MAINNET.kale_issuer, networks.MAINNET_PASSPHRASE) == (
        "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"
    )
    assert networks.sac_contract_id("KALE", networks.TESTNET.kale_issuer, networks.TESTNET_PASSPHRASE) == (
        "CAAVU2UQJLMZ3GUZFM56KVNHLPA3ZSSNR4VP2U53YBXFD2GI3QLIVHZZ"
    )
    old_testnet_issuer = "GDLN4SLKCSXKBPABPSAH2TOQVCCU6LJAMFMGA6NNMDR6HMB5DQZEFCZH"
    assert networks.sac_contract_id("KALE", old_testnet_issuer, networks.TESTNET_PASSPHRASE) == (
        "CDQKZ76ZS7LYDOZ2E7OG5LUJEWDDUNYBVYRJTBJK6645DZBNJWA7DXCR"
    )


def test_devnet_issuer_matches_its_seed() -> None:
    from stellar_sdk import Keypair

    assert Keypair.from_raw_ed25519_seed(networks.DEVNET_ISSUER_SEED).public_key == networks.DEVNET_ISSUER
    assert networks.DEVNET.passphrase not in (networks.MAINNET_PASSPHRASE, networks.TESTNET_PASSPHRASE)


def test_defaults_are_devnet() -> None:
    s = load_settings()
    assert s.stellar.network == "devnet"
    assert s.stellar.profile() == networks.DEVNET


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_STELLAR__NETWORK", "mainnet")
    monkeypatch.setenv("KALEPOOL_STELLAR__RPC_URLS", '["http://a", "http://b"]')
    s = load_settings()
    p = s.stellar.profile()
    assert p.farm_contract_id == networks.MAINNET.farm_contract_id
    assert p.rpc_urls == ("http://a", "http://b")


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "kalepool.toml"
    cfg.write_text('[stellar]\nnetwork = "testnet"\nfee_percentile = 50\n[devnet]\nport = 9100\n')
    s = load_settings(cfg)
    assert s.stellar.network == "testnet"
    assert s.stellar.fee_percentile == 50
    assert s.devnet.port == 9100
    monkeypatch.setenv("KALEPOOL_DEVNET__PORT", "9200")
    assert load_settings(cfg).devnet.port == 9200


def test_bad_values_are_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[stellar]\nnetwork = "moonnet"\n')
    with pytest.raises(ValueError, match="network"):
        load_settings(cfg)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_STELLAR__LAUNCHTUBE_TOKEN", "very-secret-token")
    dumped = load_settings().redacted()
    assert "very-secret-token" not in repr(dumped)
    assert dumped["stellar"]["launchtube_token"] == "**********"
