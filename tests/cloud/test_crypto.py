"""Field envelopes: round trip, key ids, rotation, tamper and context binding; key loading."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cloud.security import crypto
from cloud.security.crypto import FieldKeys, generate_key
from protocols.errors import ConfigError


def test_round_trip_names_its_key(keys: FieldKeys) -> None:
    blob = crypto.encrypt(keys, b"110101199001010011", context=b"tenants.id_number")
    assert crypto.key_id_of(blob) == "k1"
    assert b"110101199001010011" not in blob
    assert crypto.decrypt(keys, blob, context=b"tenants.id_number") == b"110101199001010011"


def test_same_plaintext_encrypts_differently(keys: FieldKeys) -> None:
    a = crypto.encrypt(keys, b"x", context=b"c")
    assert a != crypto.encrypt(keys, b"x", context=b"c")


def test_old_key_still_decrypts_after_rotation(keys: FieldKeys) -> None:
    old = crypto.encrypt(keys, b"13800138000", context=b"tenants.phone")
    rotated = FieldKeys(
        current="k2", keys={"k2": generate_key(), **keys.keys}, index_key=keys.index_key
    )
    assert crypto.decrypt(rotated, old, context=b"tenants.phone") == b"13800138000"
    assert crypto.key_id_of(crypto.encrypt(rotated, b"1", context=b"c")) == "k2"


def test_tamper_and_wrong_context_are_refused(keys: FieldKeys) -> None:
    blob = bytearray(crypto.encrypt(keys, b"secret", context=b"tenants.phone"))
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(keys, bytes(blob), context=b"tenants.bank_card")
    blob[-1] ^= 1
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(keys, bytes(blob), context=b"tenants.phone")


def test_unknown_key_id_is_refused(keys: FieldKeys) -> None:
    other = FieldKeys(current="zz", keys={"zz": generate_key()}, index_key=keys.index_key)
    blob = crypto.encrypt(other, b"x", context=b"c")
    with pytest.raises(crypto.DecryptionError, match="'zz'"):
        crypto.decrypt(keys, blob, context=b"c")


def test_blind_index_is_keyed_and_context_bound(keys: FieldKeys) -> None:
    a = crypto.blind_index(keys, "13800138000", context=b"tenants.phone")
    assert a == crypto.blind_index(keys, "13800138000", context=b"tenants.phone")
    assert a != crypto.blind_index(keys, "13800138000", context=b"tenants.bank_card")
    other = FieldKeys(current="k1", keys=keys.keys, index_key=generate_key())
    assert a != crypto.blind_index(other, "13800138000", context=b"tenants.phone")


def test_keys_from_environment_spec() -> None:
    k1, k2, ix = (base64.b64encode(generate_key()).decode() for _ in range(3))
    keys = crypto.parse_keys(f"new:{k2}, old:{k1}", ix)
    assert keys.current == "new"
    assert set(keys.keys) == {"new", "old"}


def test_production_refuses_missing_or_placeholder_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no field encryption keys"):
        crypto.load_field_keys(spec="", index_key="", data_dir=tmp_path, development=False)
    crypto.write_key_file(tmp_path / crypto.KEY_FILE, crypto.development_keys())
    with pytest.raises(ConfigError, match="placeholder"):
        crypto.load_field_keys(spec="", index_key="", data_dir=tmp_path, development=False)
    dev = crypto.load_field_keys(spec="", index_key="", data_dir=tmp_path, development=True)
    assert dev.is_development


def test_key_file_round_trip_is_private(tmp_path: Path, keys: FieldKeys) -> None:
    path = tmp_path / crypto.KEY_FILE
    crypto.write_key_file(path, keys)
    assert path.stat().st_mode & 0o077 == 0
    assert crypto.read_key_file(path) == keys


def test_bad_key_length_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'short'"):
        FieldKeys(current="short", keys={"short": b"x" * 16}, index_key=b"y" * 32)
