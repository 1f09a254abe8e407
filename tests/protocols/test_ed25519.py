"""The cloud signs with `cryptography`, a gateway verifies with libsodium (PyNaCl): the same
key gives the same signature bytes in both, so every cloud-signed message verifies unchanged."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey

from protocols import ed25519
from protocols.mqtt.commands import load_public_key, public_key_text

pytestmark = pytest.mark.timeout(60)


@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=512))
def test_cryptography_signs_what_libsodium_verifies(seed: bytes, message: bytes) -> None:
    cloud = Ed25519PrivateKey.from_private_bytes(seed)
    signature = cloud.sign(message)
    assert SigningKey(seed).sign(message).signature == signature  # the same bytes
    gateway = load_public_key(public_key_text(cloud.public_key()))
    assert isinstance(gateway, VerifyKey)
    assert ed25519.verifies(gateway, signature, message)
    assert ed25519.verifies(cloud.public_key(), signature, message)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not ed25519.verifies(gateway, flipped, message)
    assert not ed25519.verifies(gateway, signature, message + b"!")
    assert not ed25519.verifies(gateway, signature[:63], message)
    other = Ed25519PrivateKey.from_private_bytes(bytes(b ^ 0xFF for b in seed))
    assert not ed25519.verifies(other.public_key(), signature, message)


def test_a_pem_key_loads_only_if_it_is_ed25519() -> None:
    public = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert ed25519.raw_bytes(ed25519.load_public_key(pem)) == public.public_bytes_raw()
    x25519 = X25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    other = x25519.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="not an Ed25519"):
        ed25519.load_public_key(other)
    private = Ed25519PrivateKey.from_private_bytes(bytes(32)).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="not a PEM public key"):
        ed25519.load_public_key(private.decode())
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        ed25519.load_public_key(base64.b64encode(bytes(31)).decode())
