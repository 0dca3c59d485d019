import pytest
from pydantic import ValidationError

from bot.settings import Settings


def test_defaults_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKENWISE_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/tokenwise.db"
    assert settings.slack_api_url == "https://slack.com/api/" and settings.port == 3000
    assert settings.openai_admin_base_url == "https://api.openai.com/v1"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("TOKENWISE_ADMINS", "U1, Lead@Example.com")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert settings.admin_entries == {"u1", "lead@example.com"}


def test_toml_file_accounts_and_env_wins(monkeypatch, tmp_path):
    (tmp_path / "tokenwise.toml").write_text(
        'timezone = "Europe/Berlin"\nport = 8080\n'
        '[[accounts]]\nname = "openai-eu"\nvendor = "openai"\nkey = "sk-admin-eu"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "9000")
    settings = Settings()
    assert settings.timezone == "Europe/Berlin" and settings.port == 9000
    assert settings.accounts[0].name == "openai-eu"
    assert "sk-admin-eu" not in repr(settings) and "sk-admin-eu" in settings.secret_values()


def test_secrets_never_print(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    settings = Settings()
    assert "xoxb-very-secret" not in repr(settings) and "xoxb-very-secret" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value"), [("TOKENWISE_TIMEZONE", "Nowhere/City"), ("DATABASE_URL", "mysql://x")]
)
def test_invalid_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_extra_accounts_become_their_own_sources(monkeypatch, tmp_path):
    from bot.sources.registry import enabled_connectors

    (tmp_path / "tokenwise.toml").write_text(
        '[[accounts]]\nname = "openai-eu"\nvendor = "openai"\nkey = "sk-admin-eu"\nbase_url = "http://eu.example/v1"\n'
        '[[accounts]]\nname = "anthropic-labs"\nvendor = "anthropic"\nkey = "sk-ant-admin-labs"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-main")
    connectors = enabled_connectors(Settings())
    names = sorted(c.name for c in connectors)
    assert names == ["anthropic-labs", "anthropic-labs-claude-code", "openai", "openai-eu"]
    eu = next(c for c in connectors if c.name == "openai-eu")
    assert str(eu.http.client.base_url) == "http://eu.example/v1/"
    for connector in connectors:
        connector.close()


def test_log_level_is_checked_and_unset_by_default(monkeypatch):
    assert Settings().log_level is None  # Tokenwise at INFO, the libraries at WARNING
    monkeypatch.setenv("TOKENWISE_LOG_LEVEL", " debug ")
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("TOKENWISE_LOG_LEVEL", "loud")
    with pytest.raises(
        ValidationError, match=r"unknown log level 'loud' \(use one of DEBUG, INFO, WARNING, ERROR\)"
    ):
        Settings()
