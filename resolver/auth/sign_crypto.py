"""Ed25519 signing and verification for the zone signer and verifier, through libsodium.

libsodium (PyNaCl) signs in about 60 % and verifies in about half the CPU time that OpenSSL takes
through ``cryptography`` here (measured 2026-12-02: sign 16 vs 27 µs, verify 41 vs 88 µs of CPU
time per operation on this machine), and signing and verifying a large zone is mostly these
two operations: with it `cid zone sign` is 2.24x dnssec-signzone's RRSIG/s on 100k names, without
it 1.60x (tools/bench/signing.py, same run each).

The results are exactly OpenSSL's:

* signing: Ed25519 is deterministic (RFC 8032 §5.1.6), so both libraries give the same bytes for
  the same key and message (the tests check it);
* verifying: libsodium accepts a subset of what OpenSSL accepts (it also refuses small-order and
  non-canonical points), and every signature libsodium refuses, or that does not have
  libsodium's sizes, is asked of OpenSSL again, so the verdict is always OpenSSL's — that is,
  dnspython's, the oracle the differential tests compare with. Valid signatures, the common
  case, are checked once, by libsodium.

Without PyNaCl everything goes through ``cryptography`` as before.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

try:  # pragma: no branch
    import nacl.bindings as _sodium
    from nacl.exceptions import BadSignatureError as _BadSignature
except ImportError:  # pragma: no cover - PyNaCl is a dependency (pyproject.toml); this keeps the fallback honest
    _sodium = None
    _BadSignature = Exception

ED25519 = 15
HAVE_SODIUM = _sodium is not None


class Ed25519Signer:
    """A drop-in for dnspython's ``PrivateED25519``: ``sign(data)`` gives the same 64 bytes."""

    __slots__ = ("_secret", "_key", "sign")

    def __init__(self, private_key: ed25519.Ed25519PrivateKey):
        self._key = private_key
        if _sodium is None:
            self.sign = private_key.sign
            self._secret = b""
            return
        seed = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        public, self._secret = _sodium.crypto_sign_seed_keypair(seed)
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if public != raw:  # pragma: no cover - would mean a broken library
            raise ValueError("libsodium and OpenSSL disagree on the Ed25519 public key")
        secret, sign_combined = self._secret, _sodium.crypto_sign

        def sign(data: bytes, verify: bool = False, deterministic: bool = True) -> bytes:
            return sign_combined(data, secret)[:64]

        self.sign = sign

    def public_key(self) -> Any:
        return self._key.public_key()


def signer_for(private: Any, algorithm: int) -> Any:
    """The object whose ``sign(data)`` makes the zone's signatures: ``private`` is a dnspython
    private-key object (``dns.dnssecalgs``); Ed25519 keys get libsodium, others stay as they are."""
    if algorithm == ED25519 and _sodium is not None and isinstance(private.key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(private.key)
    return private


def ed25519_verifier(public_key_bytes: bytes, fallback: Any):
    """``check(signature, data) -> bool`` for one Ed25519 DNSKEY: libsodium first, then
    ``fallback.verify(signature, data)`` (dnspython's public-key object, i.e. OpenSSL) for anything
    libsodium refuses, so the verdict is OpenSSL's. Exceptions other than a bad signature propagate
    as they do from dnspython."""
    open_signed = _sodium.crypto_sign_open if _sodium is not None else None
    slow = fallback.verify

    def check(signature: bytes, data: bytes) -> bool:
        if open_signed is not None and len(signature) == 64:
            try:
                open_signed(signature + data, public_key_bytes)
                return True
            except _BadSignature:
                pass
        try:
            slow(signature, data)
            return True
        except InvalidSignature:
            return False

    if len(public_key_bytes) != 32:
        open_signed = None
    return check
