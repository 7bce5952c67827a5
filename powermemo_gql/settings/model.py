"""The Settings model: every option, from the groups in service.py and memory.py, with the
checks that span them and where the values come from."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from powermemo_gql.settings.memory import FlushOptions, ModelOptions
from powermemo_gql.settings.service import LimitsOptions, ServerOptions

ENV_PREFIX = "POWERMEMO_"
SECRET_FIELDS = frozenset({"root_token", "llm_api_key", "metrics_token", "embedding_api_key"})

# Which config file the YAML source reads; set by load_settings() (settings/loading.py).
config_file_var: ContextVar[Path | None] = ContextVar("powermemo_config_file", default=None)


class SettingsError(ValueError):
    """The configuration cannot be used as given."""


# Fields are listed (in config.yaml's reference, in errors) base by base from the last:
# service, flushes, limits, models, then the secrets here.
class Settings(ModelOptions, LimitsOptions, FlushOptions, ServerOptions, BaseSettings):
    """Every option the server reads. config.yaml documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
    )

    root_token: SecretStr | None = Field(
        default=None,
        description=(
            "Operator token that manages projects and API keys. "
            "Environment only: POWERMEMO_ROOT_TOKEN."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "When set, /metrics answers only `Authorization: Bearer <it>` (401 otherwise). "
            "Environment only: POWERMEMO_METRICS_TOKEN."
        ),
    )

    @field_validator(
        "redis_url",
        "llm_base_url",
        "llm_summary_model",
        "system_prompt",
        "embedding_base_url",
        "embedding_model",
        "embedding_dimensions",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("root_token", "metrics_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(f"{info.field_name} must be at least 16 characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            scheme = value.split("://", 1)[0] if "://" in value else value[:20]
            raise ValueError(
                "must start with sqlite+aiosqlite:// (the embedded default) or "
                f"postgresql+asyncpg:// (got {scheme}://...)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name, e.g. UTC)") from exc
        return value

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: explicit arguments, then env, then config.yaml.
        return (init_settings, env_settings, YamlSource(settings_cls))


class YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        path = config_file_var.get()
        if path is None:
            return {}
        return read_config_file(path)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a config file, refusing secrets and anything that is not a mapping."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping of option: value")
    for key in SECRET_FIELDS & raw.keys():
        raise SettingsError(
            f"{path}: '{key}' is a secret; set {ENV_PREFIX}{key.upper()} in the environment instead"
        )
    return raw
