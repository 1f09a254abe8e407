"""The keys outside the database: sealed under a passphrase, refused under any other."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anju.cli import cli
from cloud.backup import keys as key_backup
from cloud.commands.keys import create_key, read_key
from cloud.security import crypto
from cloud.security.crypto import FieldKeys, generate_key

PASSPHRASE = "blue tram at the 9th bridge"
FAST_N = 2**14  # the unit tests' seals; the CLI's use the real cost


def production_env(data_dir: Path, **more: str) -> dict[str, str | None]:
    """A production host whose keys live in `data_dir` (none from the environment)."""
    return {"ANJU_ENV": "production", "ANJU_SECRET_KEY": "x" * 40, "ANJU_DATA_DIR": str(data_dir),
            "ANJU_FIELD_KEYS": None, "ANJU_INDEX_KEY": None, "ANJU_COMMAND_KEY_FILE": None,
            **more}  # fmt: skip


def ring() -> FieldKeys:
    return FieldKeys(
        current="k2", keys={"k2": generate_key(), "k1": generate_key()}, index_key=generate_key()
    )


def bundle() -> key_backup.KeyBundle:
    pem = Ed25519PrivateKey.generate().private_bytes_raw()
    return key_backup.KeyBundle(ring(), b"-----BEGIN PRIVATE KEY-----\n" + pem.hex().encode())


def test_round_trip_with_the_right_passphrase() -> None:
    original = bundle()
    sealed = key_backup.seal(original, PASSPHRASE, n=FAST_N)
    assert original.field_keys.keys["k1"] not in sealed
    assert key_backup.unseal(sealed, PASSPHRASE) == original


def test_a_wrong_passphrase_is_refused() -> None:
    sealed = key_backup.seal(bundle(), PASSPHRASE, n=FAST_N)
    with pytest.raises(key_backup.KeyBackupError, match="wrong passphrase"):
        key_backup.unseal(sealed, PASSPHRASE + "!")


def test_a_changed_header_or_body_is_refused() -> None:
    """Lowering the KDF cost in the header (to guess faster) or flipping a ciphertext bit."""
    sealed = key_backup.seal(bundle(), PASSPHRASE, n=FAST_N)
    cheaper = sealed.replace(b'"n": 16384', b'"n": 8192', 1)
    assert cheaper != sealed
    flipped = sealed[:-5] + bytes([sealed[-5] ^ 1]) + sealed[-4:]
    for altered in (cheaper, flipped):
        with pytest.raises(key_backup.KeyBackupError):
            key_backup.unseal(altered, PASSPHRASE)
    for n in (b"2097152", b"16383"):  # 2 GiB of memory to try; not a power of two
        with pytest.raises(key_backup.KeyBackupError, match="damaged"):
            key_backup.unseal(sealed.replace(b'"n": 16384', b'"n": ' + n, 1), PASSPHRASE)


def test_a_short_passphrase_is_refused() -> None:
    with pytest.raises(key_backup.KeyBackupError, match="12"):
        key_backup.seal(bundle(), "short", n=FAST_N)


def test_install_never_replaces_other_keys(tmp_path: Path) -> None:
    first, second = bundle(), bundle()
    field, command = tmp_path / "field-keys.json", tmp_path / "command-key.pem"
    assert key_backup.install(first, field, command) == [field, command]
    assert key_backup.install(first, field, command) == []  # the same keys: nothing to do
    with pytest.raises(key_backup.KeyBackupError, match="other keys"):
        key_backup.install(second, field, command)
    assert crypto.read_key_file(field) == first.field_keys
    assert command.read_bytes() == first.command_key_pem
    assert field.stat().st_mode & 0o777 == 0o600
    assert command.stat().st_mode & 0o777 == 0o600


def test_cli_round_trip_restores_both_keys(tmp_path: Path) -> None:
    """`keys backup` on one host, `keys restore` on a fresh one: the same field key ring and
    command key; a wrong passphrase writes nothing."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    keys = ring()
    crypto.write_key_file(old / crypto.KEY_FILE, keys)
    command_key = create_key(old / "command-key.pem")
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    sealed = tmp_path / "keys.sealed"
    runner = CliRunner()

    def anju(data_dir: Path, *args: str) -> str:
        result = runner.invoke(cli, ["cloud", "keys", *args], env=production_env(data_dir))
        return f"{result.exit_code}:{result.output}"

    out = anju(old, "backup", str(sealed), "--passphrase-file", str(secret))
    assert out.startswith("0:"), out
    assert sealed.stat().st_mode & 0o777 == 0o600
    out = anju(new, "restore", str(sealed), "--passphrase-file", str(wrong))
    assert out.startswith("1:"), out
    assert "wrong passphrase" in out
    assert not new.exists() or not any(new.iterdir())
    out = anju(new, "restore", str(sealed), "--passphrase-file", str(secret))
    assert out.startswith("0:"), out
    assert crypto.read_key_file(new / crypto.KEY_FILE) == keys
    assert read_key(new / "command-key.pem").private_bytes_raw() == command_key.private_bytes_raw()
