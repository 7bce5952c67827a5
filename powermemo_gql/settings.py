"""Settings: config.yaml, overridden by POWERMEMO_* environment variables.

Secrets (the root token) come only from the environment: a config file is
something people commit, so a secret found in it is refused outright.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "POWERMEMO_"
CONFIG_ENV_VAR = "POWERMEMO_CONFIG"
DEFAULT_CONFIG_FILE = Path("config.yaml")
SECRET_FIELDS = frozenset({"root_token", "llm_api_key"})

# Which config file the YAML source reads; set by load_settings().
_config_file: ContextVar[Path | None] = ContextVar("powermemo_config_file", default=None)


class SettingsError(ValueError):
    """The configuration cannot be used as given."""


class Settings(BaseSettings):
    """Every option the server reads. config.yaml documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
    )

    mode: Literal["development", "production"] = Field(
        default="development",
        description=(
            "development turns GraphiQL on and lets `serve` generate a root token; "
            "production requires POWERMEMO_ROOT_TOKEN and turns GraphiQL off."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8019, ge=1, le=65535, description="Port `serve` listens on.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./powermemo.db",
        description=(
            "SQLAlchemy async URL: sqlite+aiosqlite:///path.db (embedded default) "
            "or postgresql+asyncpg://user@host:5432/db."
        ),
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections kept open per server process (PostgreSQL only).",
    )
    database_pool_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Seconds a request waits for a free connection (PostgreSQL only) before it fails "
            "with the code DATABASE_BUSY."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://host:6379/0 to carry pub/sub between server instances; "
            "empty means the in-process broker (single instance)."
        ),
    )
    migrate_on_startup: bool = Field(
        default=True,
        description="Apply pending database migrations when the server starts.",
    )
    graphiql: bool | None = Field(
        default=None,
        description="Serve GraphiQL at /graphql; empty means on in development, off in production.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log lines printed."
    )
    max_buffer_tokens: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="A user's buffer is flushed once its idle items hold more tokens than this.",
    )
    buffer_flush_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds without a new item after which a buffer is flushed anyway.",
    )
    flush_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description=(
            "Length of a flush's per-user lease, renewed every third of it while the flush runs; "
            "the items of a flush whose process died are flushed again once it runs out."
        ),
    )
    flush_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="A flush still running after this long fails (its items can be retried).",
    )
    background_flushes: bool = Field(
        default=True,
        description=(
            "Run flushes on this instance by itself: buffers past max_buffer_tokens, idle "
            "buffers, and recovery of abandoned flushes. flushBuffer works either way."
        ),
    )
    max_profile_subtopics: int = Field(
        default=15,
        ge=1,
        le=200,
        description="A topic with more sub-topics than this is regrouped by the LLM.",
    )
    max_profile_entry_tokens: int = Field(
        default=256,
        ge=16,
        le=10_000,
        description="A profile entry a flush writes longer than this is shortened by the LLM.",
    )
    language: Literal["en", "zh"] = Field(
        default="en", description="Language of prompts and memories, unless a project sets its own."
    )
    keep_input_language: bool = Field(
        default=False,
        description="Keep memories in the language the user wrote in, instead of `language`.",
    )
    introspection: bool | None = Field(
        default=None,
        description="Allow schema introspection; empty means on in development, off in production.",
    )
    max_query_depth: int = Field(
        default=12, ge=2, le=100, description="Deepest selection nesting a query may have."
    )
    max_query_aliases: int = Field(
        default=30, ge=1, le=1000, description="Aliases one document may use."
    )
    max_query_tokens: int = Field(
        default=2000, ge=100, le=1_000_000, description="GraphQL tokens one document may have."
    )
    max_query_directives: int = Field(
        default=20, ge=0, le=1000, description="Directives one document may use."
    )
    max_query_fields: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description=(
            "Fields one operation may select once its fragments are expanded (each spread "
            "counted every time); validation work grows with it."
        ),
    )
    max_query_length: int = Field(
        default=100_000,
        ge=1000,
        le=10_000_000,
        description="Characters one GraphQL document may have (the body limit is for variables).",
    )
    max_batch_operations: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Operations one batched POST (a JSON array) may carry; 0 turns batching off.",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest request body accepted (images up to 5 MiB travel as base64).",
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        description=(
            "Requests per minute per API key (the root token is not limited); 0 turns it off. "
            "Counted in Redis when redis_url is set, so the limit holds across instances."
        ),
    )
    ws_max_subscriptions: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Subscriptions one websocket connection may run at once.",
    )
    ws_connection_init_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a new websocket has to send connection_init before it is closed.",
    )
    llm_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1; "
            "empty means OpenAI itself."
        ),
    )
    llm_model: str = Field(
        default="gpt-4o-mini", min_length=1, description="Chat model the memory pipeline uses."
    )
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Time limit of one LLM request."
    )
    llm_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description=(
            "Retries of an LLM request after a timeout, HTTP 429 or 5xx. (An answer that does "
            "not parse is asked again once, separately.)"
        ),
    )
    llm_retry_backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="First wait before a retry; each further retry waits twice as long.",
    )
    llm_max_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "LLM requests in flight at once, per process; also how many flushes a process "
            "runs at once (a flush waiting for another's lease holds no slot)."
        ),
    )
    llm_api_key: SecretStr | None = Field(
        default=None,
        description="Key for the LLM API. Environment only: POWERMEMO_LLM_API_KEY.",
    )
    root_token: SecretStr | None = Field(
        default=None,
        description=(
            "Operator token that manages projects and API keys. "
            "Environment only: POWERMEMO_ROOT_TOKEN."
        ),
    )

    @field_validator("redis_url", "llm_base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("root_token")
    @classmethod
    def _strong_root_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("root_token must be at least 16 characters")
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
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        path = _config_file.get()
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


def resolve_config_file(explicit: Path | None = None) -> Path | None:
    """--config wins, then $POWERMEMO_CONFIG, then ./config.yaml if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"config file not found: {explicit}")
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV_VAR} names a missing file: {path}")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the config file, the environment and explicit overrides."""
    token = _config_file.set(resolve_config_file(config_file))
    try:
        return Settings(**overrides)
    finally:
        _config_file.reset(token)
