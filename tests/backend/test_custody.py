"""Custody: AES-GCM sealing with key ids, rotation, the signer, and no secret in any repr."""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from stellar_sdk import Keypair

from kalepool.backend.custody import (
    CustodyError,
    Keyring,
    SealedSecret,
    Signer,
    UnknownKeyId,
    generate_master_key,
    new_custodial_account,
    sealed_of,
)
from kalepool.backend.db.models import Farmer
from kalepool.backend.db.session import Database
from kalepool.backend.services.farmers import rotate_master_key
from kalepool.errors import ConfigError
from tests.backend import factories


def _keyring() -> Keyring:
    return Keyring([os.urandom(32)])


def test_seal_then_open_round_trips() -> None:
    keyring = _keyring()
    keypair = Keypair.random()
    sealed = keyring.seal(keypair.raw_secret_key(), public_key=keypair.public_key)
    assert sealed.key_id == keyring.active_key_id
    assert len(sealed.nonce) == 12
    assert keypair.raw_secret_key() not in sealed.ciphertext
    assert keyring.open(sealed, public_key=keypair.public_key) == keypair.raw_secret_key()


def test_each_seal_uses_a_fresh_nonce() -> None:
    keyring = _keyring()
    seed = os.urandom(32)
    first, second = keyring.seal(seed, public_key="G1"), keyring.seal(seed, public_key="G1")
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext


def test_a_sealed_secret_is_bound_to_its_account() -> None:
    keyring = _keyring()
    _, sealed = new_custodial_account(keyring)
    with pytest.raises(CustodyError, match="does not open"):
        keyring.open(sealed, public_key=Keypair.random().public_key)


def test_tampering_is_detected() -> None:
    keyring = _keyring()
    public_key, sealed = new_custodial_account(keyring)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(CustodyError):
        keyring.open(replace(sealed, ciphertext=flipped), public_key=public_key)


def test_an_unknown_key_id_is_named() -> None:
    public_key, sealed = new_custodial_account(_keyring())
    other = _keyring()
    with pytest.raises(UnknownKeyId) as caught:
        other.open(sealed, public_key=public_key)
    assert caught.value.key_id == sealed.key_id


def test_rotation_keeps_old_keys_for_opening_only() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    old = Keyring([old_key])
    public_key, sealed = new_custodial_account(old)
    rotated = Keyring([new_key, old_key])
    assert rotated.active_key_id != old.active_key_id
    assert set(rotated.key_ids) == {old.active_key_id, rotated.active_key_id}
    seed = rotated.open(sealed, public_key=public_key)  # old secrets still open
    resealed = rotated.reseal(sealed, public_key=public_key)
    assert resealed.key_id == rotated.active_key_id
    assert Keyring([new_key]).open(resealed, public_key=public_key) == seed
    assert rotated.reseal(resealed, public_key=public_key) is resealed


def test_key_ids_are_stable_fingerprints() -> None:
    key = os.urandom(32)
    assert Keyring([key]).active_key_id == Keyring([key]).active_key_id
    assert len(Keyring([key]).active_key_id) == 16


def test_keyring_from_spec_and_file(tmp_path: Path) -> None:
    first, second = generate_master_key(), generate_master_key()
    assert len(base64.b64decode(first)) == 32
    from_env = Keyring.from_spec(f"{first}, {second}")
    path = tmp_path / "keys"
    path.write_text(f"# active first\n{first}\n\n{second}  # retired 2026-01\n")
    from_file = Keyring.from_settings(None, path)
    assert from_env.key_ids == from_file.key_ids and len(from_env.key_ids) == 2
    assert from_env.active_key_id == Keyring.from_spec(first).active_key_id
    # the environment's key wins over the file
    assert Keyring.from_settings(second, path).active_key_id == Keyring.from_spec(second).active_key_id


@pytest.mark.parametrize("spec", ["", "not base64!", base64.b64encode(b"short").decode(), "# only a comment"])
def test_bad_key_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        Keyring.from_spec(spec)


def test_missing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no master key"):
        Keyring.from_settings(None, None)
    with pytest.raises(ConfigError, match="no such file"):
        Keyring.from_settings(None, tmp_path / "absent")


class _Row:
    def __init__(self, public_key: str, sealed: SealedSecret) -> None:
        self.public_key = public_key
        self.secret_key_id = sealed.key_id
        self.secret_nonce = sealed.nonce
        self.secret_ciphertext = sealed.ciphertext


def test_signer_yields_the_accounts_keypair() -> None:
    keyring = _keyring()
    public_key, sealed = new_custodial_account(keyring)
    with Signer(keyring).keypair(_Row(public_key, sealed)) as keypair:
        assert keypair.public_key == public_key
        assert keypair.can_sign()
        signature = keypair.sign(b"tx")
    Keypair.from_public_key(public_key).verify(b"tx", signature)


def test_signer_refuses_a_secret_of_another_account() -> None:
    keyring = _keyring()
    public_key, _ = new_custodial_account(keyring)
    other = Keypair.random()
    # a seed sealed for `public_key` but belonging to another account
    forged = keyring.seal(other.raw_secret_key(), public_key=public_key)
    with pytest.raises(CustodyError), Signer(keyring).keypair(_Row(public_key, forged)):
        pass


def test_no_repr_shows_key_material() -> None:
    key = os.urandom(32)
    keyring = Keyring([key])
    public_key, sealed = new_custodial_account(keyring)
    seed = keyring.open(sealed, public_key=public_key)
    secret = Keypair.from_raw_ed25519_seed(seed).secret
    with Signer(keyring).keypair(_Row(public_key, sealed)) as keypair:
        shown = " ".join(repr(x) for x in (keyring, sealed, Signer(keyring), keypair, str(keypair)))
    for forbidden in (secret, seed.hex(), key.hex(), base64.b64encode(key).decode(), sealed.ciphertext.hex()):
        assert forbidden not in shown


async def test_rotate_master_key_reseals_every_farmer(fresh_db: Database) -> None:
    db = fresh_db
    old_key, new_key = os.urandom(32), os.urandom(32)
    old = Keyring([old_key])
    async with db.transaction() as s:
        p = await factories.pooler(s)
        farmers = [await factories.farmer(s, p.id, old) for _ in range(5)]
    seeds = {f.public_key: old.open(sealed_of(f), public_key=f.public_key) for f in farmers}

    rotated = Keyring([new_key, old_key])
    assert await rotate_master_key(db, rotated, batch=2) == 5
    assert await rotate_master_key(db, rotated) == 0  # nothing left

    only_new = Keyring([new_key])
    async with db.transaction() as s:
        rows = (await s.scalars(select(Farmer))).all()
    assert {r.secret_key_id for r in rows} == {only_new.active_key_id}
    for row in rows:
        assert only_new.open(sealed_of(row), public_key=row.public_key) == seeds[row.public_key]
