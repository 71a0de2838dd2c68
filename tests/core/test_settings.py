from __future__ import annotations

import pytest

from app.core.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_sqlite_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TESSERA_DATABASE_URL", "TESSERA_BROKER_URL", "TESSERA_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite:///./tessera.db"
    assert settings.embedded


def test_environment_is_read_and_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("TESSERA_SIGNUP_POLICY", "invite")
    settings = load_settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.signup_policy.value == "invite"


def test_invalid_settings_fail_naming_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("TESSERA_PLATFORM_FEE_BPS", "-5")
    monkeypatch.setenv("TESSERA_SIGNUP_POLICY", "sometimes")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    for name in ("TESSERA_DATABASE_URL", "TESSERA_PLATFORM_FEE_BPS", "TESSERA_SIGNUP_POLICY"):
        assert name in message


def test_postgresql_requires_a_real_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", "postgresql://postgres@localhost/x")
    monkeypatch.delenv("TESSERA_SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="TESSERA_SECRET_KEY"):
        load_settings(_env_file=None)
    monkeypatch.setenv("TESSERA_SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="32 characters"):
        load_settings(_env_file=None)
    monkeypatch.setenv("TESSERA_SECRET_KEY", "k" * 40)
    assert load_settings(_env_file=None).database_url.startswith("postgresql+psycopg://")


def test_stripe_provider_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_PAYOUTS_PROVIDER", "stripe")
    monkeypatch.delenv("TESSERA_STRIPE_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="TESSERA_STRIPE_API_KEY"):
        load_settings(_env_file=None)
