"""Custodial keys: generated with stellar-sdk, sealed with AES-256-GCM, opened only to sign.

* A :class:`Keyring` holds one or more 32-byte master keys. The first **encrypts** new
  secrets; the others only **decrypt** secrets sealed before a rotation. Each key is known
  by its *key id*, a fingerprint (16 hex digits of a SHA-256 over the key), which is stored
  beside every sealed secret, so the keyring can pick the right key and a rotation can find
  what is left to re-seal (:func:`kalepool.backend.services.farmers.rotate_master_key`).
* The master keys come from ``KALEPOOL_BACKEND__MASTER_KEY`` (base64 keys, comma
  separated) or ``backend.master_key_file`` (one base64 key a line, ``#`` comments).
* A :class:`SealedSecret` is (key id, 12-byte nonce, ciphertext + tag) of the raw 32-byte
  ed25519 seed. The farmer's public key is the AES-GCM associated data, so a sealed secret
  copied onto another farmer's row does not open.
* :class:`Signer` is the one place that opens a secret: ``with signer.keypair(farmer):``
  yields a stellar-sdk ``Keypair`` for the duration of one signing and drops it after.

Nothing here logs, and no ``repr`` shows key material. (Python cannot wipe memory; the
plaintext seed lives only in the short-lived objects of one signing.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from stellar_sdk import Keypair

from kalepool.errors import ConfigError, KalePoolError

__all__ = [
    "CustodyError",
    "Keyring",
    "SealedSecret",
    "SealedSecretHolder",
    "Signer",
    "UnknownKeyId",
    "generate_master_key",
    "new_custodial_account",
    "sealed_of",
]

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"kalepool/farmer-secret/v1:"


class CustodyError(KalePoolError):
    """A sealed secret could not be opened (wrong key, tampered data, wrong owner)."""

    code = "custody_error"


class UnknownKeyId(CustodyError):
    """The secret was sealed under a master key this keyring does not hold."""

    code = "unknown_master_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no master key with id {key_id} is configured")
        self.key_id = key_id


def generate_master_key() -> str:
    """A new master key, base64 of 32 random bytes (what the settings expect)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"kalepool-master-key-id:" + key).hexdigest()[:16]


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: a master key is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: a master key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


@dataclass(frozen=True, repr=False)
class SealedSecret:
    """An encrypted ed25519 seed and the id of the master key that sealed it."""

    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedSecret(key_id={self.key_id!r})"


class SealedSecretHolder(Protocol):
    """Anything carrying a public key and its sealed secret (a ``farmers`` row)."""

    public_key: str
    secret_key_id: str
    secret_nonce: bytes
    secret_ciphertext: bytes


@dataclass(frozen=True, repr=False)
class _MasterKey:
    key_id: str
    aead: AESGCM = field(compare=False)


class Keyring:
    """The master keys: ``keys[0]`` seals, every key opens what it sealed."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("backend.master_key: no master key configured")
        self._keys: dict[str, _MasterKey] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"backend.master_key: keys must be {KEY_BYTES} bytes")
            master = _MasterKey(_key_id(key), AESGCM(key))
            self._keys.setdefault(master.key_id, master)
        self.active_key_id = _key_id(keys[0])
        # a one-way child of the sealing key, for keys other parts need (never the key itself)
        self._subkeys = hmac.new(keys[0], b"kalepool/subkeys/v1", hashlib.sha256).digest()

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. the dashboard's session cookies), derived
        from the sealing key with HMAC-SHA256: stable across processes sharing the keyring,
        unrelated to any secret it seals, and new after a rotation."""
        return hmac.new(self._subkeys, purpose.encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Keyring(active={self.active_key_id}, keys={len(self._keys)})"

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @classmethod
    def from_spec(cls, spec: str, where: str = "backend.master_key") -> Keyring:
        """Keys as text: base64 keys separated by commas or newlines, ``#`` starts a comment."""
        keys = []
        for line in spec.replace(",", "\n").splitlines():
            item = line.split("#", 1)[0].strip()
            if item:
                keys.append(_decode_key(item, where))
        return cls(keys)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        if not path.is_file():
            raise ConfigError(f"backend.master_key_file: no such file: {path}")
        return cls.from_spec(path.read_text(), where=f"backend.master_key_file ({path})")

    @classmethod
    def from_settings(cls, master_key: str | None, master_key_file: Path | None) -> Keyring:
        """The keyring the settings name; the environment's key wins over the file."""
        if master_key:
            return cls.from_spec(master_key)
        if master_key_file is not None:
            return cls.from_file(master_key_file)
        raise ConfigError(
            "no master key: set KALEPOOL_BACKEND__MASTER_KEY or backend.master_key_file "
            "(make one with `kalepool backend generate-master-key`)"
        )

    def seal(self, seed: bytes, *, public_key: str) -> SealedSecret:
        """Encrypt a raw 32-byte ed25519 seed under the active key, bound to ``public_key``."""
        if len(seed) != 32:
            raise ValueError("seed: must be the 32-byte raw ed25519 seed")
        master = self._keys[self.active_key_id]
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = master.aead.encrypt(nonce, seed, _AAD_PREFIX + public_key.encode())
        return SealedSecret(master.key_id, nonce, ciphertext)

    def open(self, sealed: SealedSecret, *, public_key: str) -> bytes:
        """The raw seed; raises :class:`UnknownKeyId` or :class:`CustodyError`."""
        master = self._keys.get(sealed.key_id)
        if master is None:
            raise UnknownKeyId(sealed.key_id)
        try:
            return master.aead.decrypt(sealed.nonce, sealed.ciphertext, _AAD_PREFIX + public_key.encode())
        except InvalidTag:
            raise CustodyError(
                f"the sealed secret of {public_key} does not open (tampered, or not its own)"
            ) from None

    def reseal(self, sealed: SealedSecret, *, public_key: str) -> SealedSecret:
        """The same secret sealed under the active key (a no-op result if already so)."""
        if sealed.key_id == self.active_key_id:
            return sealed
        return self.seal(self.open(sealed, public_key=public_key), public_key=public_key)


def new_custodial_account(keyring: Keyring) -> tuple[str, SealedSecret]:
    """A fresh random Stellar account: its public key and its sealed secret."""
    keypair = Keypair.random()
    return keypair.public_key, keyring.seal(keypair.raw_secret_key(), public_key=keypair.public_key)


def sealed_of(holder: SealedSecretHolder) -> SealedSecret:
    return SealedSecret(holder.secret_key_id, bytes(holder.secret_nonce), bytes(holder.secret_ciphertext))


class Signer:
    """Opens a custodial secret for exactly one signing.

    Usage::

        with signer.keypair(farmer) as keypair:
            outcome = await chain.plant(keypair, amount)

    The keypair exists only inside the block; the signer checks that the opened seed
    really belongs to ``farmer.public_key`` before yielding it.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"Signer({self.keyring!r})"

    @contextmanager
    def keypair(self, holder: SealedSecretHolder) -> Iterator[Keypair]:
        seed = self.keyring.open(sealed_of(holder), public_key=holder.public_key)
        keypair = Keypair.from_raw_ed25519_seed(seed)
        del seed
        if keypair.public_key != holder.public_key:
            raise CustodyError(f"the sealed secret does not belong to {holder.public_key}")
        try:
            yield keypair
        finally:
            del keypair
