from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from powermemo_gql.app import RootTokenRequired, check_startable
from powermemo_gql.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
ENV_ONLY = {"root_token", "llm_api_key", "metrics_token", "embedding_api_key"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings read POWERMEMO_* and ./config.yaml; isolate each test from the machine's.
    for name in list(__import__("os").environ):
        if name.startswith("POWERMEMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_is_read(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "port: 9000\nlog_level: DEBUG\n")
    settings = load_settings(config)
    assert (settings.port, settings.log_level) == (9000, "DEBUG")


def test_environment_overrides_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path / "c.yaml", "port: 9000\n")
    monkeypatch.setenv("POWERMEMO_PORT", "9100")
    assert load_settings(config).port == 9100


def test_config_from_env_var_and_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "config.yaml", "port: 9001\n")
    assert load_settings().port == 9001
    other = _write(tmp_path / "other.yaml", "port: 9002\n")
    monkeypatch.setenv("POWERMEMO_CONFIG", str(other))
    assert load_settings().port == 9002


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.yaml")


def test_secret_in_config_file_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "root_token: abcdefghijklmnopqrstuvwxyz\n")
    with pytest.raises(SettingsError, match="POWERMEMO_ROOT_TOKEN"):
        load_settings(config)


def test_metrics_token_in_config_file_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "metrics_token: abcdefghijklmnopqrstuvwxyz\n")
    with pytest.raises(SettingsError, match="POWERMEMO_METRICS_TOKEN"):
        load_settings(config)


def test_short_metrics_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERMEMO_METRICS_TOKEN", "short")
    with pytest.raises(ValidationError, match="metrics_token must be at least 16 characters"):
        load_settings()


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "max_buffer_tokenz: 10\n")
    with pytest.raises(
        SettingsError, match=r"unknown option 'max_buffer_tokenz'.*did you mean max_buffer_tokens"
    ):
        load_settings(config)


def test_unknown_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt variable must not leave the default silently in force."""
    monkeypatch.setenv("POWERMEMO_ENV", "production")
    with pytest.raises(SettingsError, match="unknown environment variable POWERMEMO_ENV"):
        load_settings()
    monkeypatch.delenv("POWERMEMO_ENV")
    monkeypatch.setenv("POWERMEMO_MAX_BUFFER_TOKEN", "5")
    with pytest.raises(SettingsError, match="did you mean POWERMEMO_MAX_BUFFER_TOKENS"):
        load_settings()
    monkeypatch.delenv("POWERMEMO_MAX_BUFFER_TOKEN")
    monkeypatch.setenv("POWERMEMO_URL", "http://127.0.0.1:1")  # the CLI's, not a setting
    assert load_settings().port == 8019


def test_configuration_errors_read_as_one_line_per_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from powermemo_gql.settings import describe_error

    monkeypatch.setenv("POWERMEMO_DATABASE_URL", "mysql://root@db/memory")
    monkeypatch.setenv("POWERMEMO_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    text = describe_error(caught.value)
    assert "database_url: must start with sqlite+aiosqlite://" in text
    assert "(got mysql://...)" in text
    assert "timezone: unknown time zone 'Mars/Olympus'" in text
    assert "pydantic.dev" not in text


def test_invalid_values_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="port"):
        load_settings(_write(tmp_path / "c.yaml", "port: 70000\n"))
    with pytest.raises(ValidationError, match="mode"):
        load_settings(_write(tmp_path / "d.yaml", "mode: staging\n"))


def test_short_root_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERMEMO_ROOT_TOKEN", "short")
    with pytest.raises(ValidationError, match="16 characters"):
        load_settings()


def test_production_refuses_to_start_without_root_token() -> None:
    with pytest.raises(RootTokenRequired, match="POWERMEMO_ROOT_TOKEN"):
        check_startable(Settings(mode="production"))
    check_startable(Settings(mode="production", root_token="x" * 16))


def test_graphiql_follows_mode_unless_set() -> None:
    assert Settings(mode="development").graphiql_enabled
    assert not Settings(mode="production").graphiql_enabled
    assert Settings(mode="production", graphiql=True).graphiql_enabled


def test_empty_redis_url_means_in_process_broker(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path / "c.yaml", "redis_url:\n")).redis_url is None


def test_shipped_config_documents_every_option_and_nothing_else() -> None:
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    assert set(shipped) == set(Settings.model_fields) - ENV_ONLY
    text = (REPO / "config.yaml").read_text()
    for option in shipped:
        # Each option is preceded by a comment explaining it.
        assert re.search(rf"#[^\n]*\n(#[^\n]*\n)*{option}:", text), option
    # And the shipped file loads as-is.
    assert load_settings(REPO / "config.yaml").database_url.startswith("sqlite")


def test_every_option_is_read_somewhere() -> None:
    """No dead config: each setting is used outside the settings package."""
    package = REPO / "powermemo_gql"
    sources = "\n".join(
        p.read_text() for p in package.rglob("*.py") if not p.is_relative_to(package / "settings")
    )
    # Derived properties (graphiql_enabled, is_production, ...) count as reads of their field.
    derived = {
        name: [p for p in dir(Settings) if isinstance(getattr(Settings, p), property)]
        for name in Settings.model_fields
    }
    for name in Settings.model_fields:
        readers = [f"settings.{name}"]
        readers += [
            f"settings.{prop}"
            for prop in derived[name]
            if f"self.{name}" in __import__("inspect").getsource(getattr(Settings, prop).fget)
        ]
        assert any(r in sources for r in readers), f"{name} is never read"


def test_configuration_doc_holds_the_generated_reference() -> None:
    from powermemo_gql.settings.reference import reference_markdown

    doc = (REPO / "docs" / "configuration.md").read_text()
    assert reference_markdown() in doc, (
        "docs/configuration.md is stale: paste the output of `powermemo-gql config-reference`"
    )
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
