"""Cloud settings come from ANJU_* variables; placeholders are refused outside development."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cloud.app import field_keys_for
from cloud.config import MIN_SECRET_LENGTH, load_settings
from cloud.db import normalize_url
from cloud.security import crypto
from protocols.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ANJU_ENV", "ANJU_SECRET_KEY", "ANJU_DATABASE_URL", "ANJU_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ConfigError, match=r"ANJU_SECRET_KEY.*placeholder"):
        load_settings()


def test_development_accepts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_ENV", "development")
    assert load_settings().env == "development"


def test_real_secret_in_production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANJU_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.env == "production"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'anju.db'}"


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_ENV", "staging")
    with pytest.raises(ConfigError, match="ANJU_ENV"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_use_psycopg3(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("secret", ["x", "k" * (MIN_SECRET_LENGTH - 1)])
def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("ANJU_SECRET_KEY", secret)
    with pytest.raises(ConfigError, match=rf"ANJU_SECRET_KEY has {len(secret)} characters"):
        load_settings()


def test_production_refuses_the_development_index_key(tmp_path: Path) -> None:
    """A real field key beside the published blind-index key: anyone could compute the index of
    a guessed ID number or phone and find the person in a copy of the database."""
    real = base64.b64encode(crypto.generate_key()).decode()
    dev_index = base64.b64encode(crypto.development_keys().index_key).decode()
    settings = load_settings(secret_key="s" * 40, data_dir=tmp_path, field_keys=f"k1:{real}")
    with pytest.raises(ConfigError, match="ANJU_INDEX_KEY: the published development"):
        field_keys_for(settings.model_copy(update={"index_key": dev_index}))
    assert not field_keys_for(settings.model_copy(update={"index_key": real})).is_development
    dev = load_settings(env="development", field_keys=f"k1:{real}", index_key=dev_index)
    assert field_keys_for(dev).has_development_index_key  # development keeps its placeholder
