"""Cloud settings come from ANJU_* variables; placeholders are refused outside development."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config import load_settings
from cloud.db import normalize_url
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
