"""Settings: config.yaml, overridden by POWERMEMO_* environment variables.

Secrets (the root token) come only from the environment: a config file is
something people commit, so a secret found in it is refused outright.
"""

from __future__ import annotations

import difflib
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "POWERMEMO_"
CONFIG_ENV_VAR = "POWERMEMO_CONFIG"
DEFAULT_CONFIG_FILE = Path("config.yaml")
SECRET_FIELDS = frozenset({"root_token", "llm_api_key", "metrics_token", "embedding_api_key"})

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
    database_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Seconds to open a PostgreSQL connection (TCP, TLS and login) before the request "
            "fails with the code DATABASE_UNAVAILABLE."
        ),
    )
    database_statement_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds one PostgreSQL statement may take: the server cancels it "
            "(statement_timeout; the request fails with DATABASE_BUSY), and a second later "
            "the client stops waiting on a server gone silent (DATABASE_UNAVAILABLE)."
        ),
    )
    readiness_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "Seconds /readyz and the health query wait for the database and Redis, on a "
            "connection of their own, before reporting them down."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://host:6379/0 to carry pub/sub between server instances; "
            "empty means the in-process broker (single instance)."
        ),
    )
    redis_connect_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds to open a Redis connection before the attempt counts as failed.",
    )
    redis_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "Seconds one Redis command (publish, rate-limit count) may take, and how long the "
            "subscriber connection waits for the answer to its PING before it counts as broken."
        ),
    )
    redis_ping_interval: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "Seconds of silence after which the subscriber connection sends a PING: a Redis "
            "that froze is found within this plus redis_timeout, and subscriptions end "
            "with an error rather than wait forever."
        ),
    )
    feed_catch_up_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "Seconds between checks, while anybody follows a user's changes, of every followed "
            "user's change counter (one query per instance): a notification lost on the "
            "broker delays a change by at most this long."
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
    timezone: str = Field(
        default="UTC",
        description=(
            "IANA time zone (e.g. Europe/Paris) in which message times are shown to the LLM, so "
            "that 'yesterday' or 'tonight' resolve to the user's dates."
        ),
    )
    system_prompt: str | None = Field(
        default=None,
        max_length=4000,
        description=(
            "What the app is, framing every pipeline call (e.g. 'a language tutor: track the "
            "learner's level and mistakes'); a project's profile config may set its own."
        ),
    )
    llm_context_tokens: int = Field(
        default=16_000,
        ge=1000,
        le=2_000_000,
        description=(
            "Most tokens one pipeline prompt may hold (system and user message together); "
            "longer input is split into several calls."
        ),
    )
    max_process_tokens: int = Field(
        default=8000,
        ge=200,
        le=1_000_000,
        description=(
            "Most buffer tokens summarized in one call; a larger buffer is summarized in chunks "
            "whose notes are then merged."
        ),
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
    ws_max_connections_per_key: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description=(
            "Websockets one API key may hold open on each instance; more are closed with 4429."
        ),
    )
    ws_max_connections: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description=(
            "Websockets one instance holds open at once, authenticated or not; more are "
            "closed with 1013 (try again later)."
        ),
    )
    api_key_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=30,
        description=(
            "Seconds an instance remembers an API key that worked, so that requests skip the "
            "key lookup. Revoking a key drops it at once on every instance told through the "
            "broker; this bounds how long a revocation nobody announced (the CLI on a "
            "deployment without Redis) can go unnoticed. 0 looks every key up."
        ),
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description=(
            "Failed authentications one client address may make per minute; then it gets "
            "429 (websockets: close 4429) until the minute ends. 0 turns it off."
        ),
    )
    llm_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1; "
            "empty means OpenAI itself."
        ),
    )
    llm_model: str = Field(
        default="gpt-4o-mini",
        min_length=1,
        description="Chat model the memory pipeline uses (but see llm_summary_model).",
    )
    llm_summary_model: str | None = Field(
        default=None,
        description=(
            "Chat model of the summarize and tag_event steps (often a smaller, faster one); "
            "empty means llm_model."
        ),
    )
    llm_json_mode: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "Ask for JSON output (response_format json_object). auto: ask; when the endpoint "
            "refuses it (HTTP 400, 415 or 422 naming response_format, or any of them before a "
            "request with it was answered) make the call again without it, and stop asking for "
            "the process's lifetime; on: always ask (a refusal is an error); off: never."
        ),
    )
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Time limit of one LLM request."
    )
    llm_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description=(
            "Retries of an LLM request after a timeout, HTTP 429 or 5xx, or a 200 that is no "
            "chat completion. (An answer that does not parse is asked again once, separately.)"
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
    embedding_provider: Literal["none", "openai", "local"] = Field(
        default="none",
        description=(
            "Where embeddings for semantic search come from. openai: an OpenAI-compatible "
            "/v1/embeddings endpoint; local: all-MiniLM-L6-v2 on this machine's CPU (needs "
            "`pip install 'powermemo-gql[local]'`); none: search by keywords only."
        ),
    )
    embedding_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the OpenAI-compatible embeddings API (openai provider); "
            "empty means llm_base_url."
        ),
    )
    embedding_model: str | None = Field(
        default=None,
        description=(
            "Embedding model of the openai provider, e.g. text-embedding-3-small (required "
            "there). The local provider runs its packaged all-MiniLM-L6-v2: leave it empty."
        ),
    )
    embedding_dimensions: int | None = Field(
        default=None,
        ge=1,
        le=16_384,
        description=(
            "Length of the vectors. openai: sent as `dimensions` when set (text-embedding-3 "
            "models can shorten theirs); empty: the length of the first answer, and the "
            "endpoint is not asked for one. local: empty or the model's own (384)."
        ),
    )
    embedding_batch_size: int = Field(
        default=64,
        ge=1,
        le=2048,
        description="Most texts embedded in one request (or one local encode).",
    )
    embedding_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Time limit of one embedding request."
    )
    embedding_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description=(
            "Retries of an embedding request after a timeout, HTTP 429 or 5xx, or an answer "
            "that is not one vector of the right length per text; waits as "
            "llm_retry_backoff_seconds."
        ),
    )
    embedding_max_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description=("Embedding requests in flight at once, per process (local: encodes at once)."),
    )
    embedding_catchup_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "How often every server and worker looks for rows left unembedded (a failed or "
            "lost embedding, a model change) and embeds them (up to 100 users a pass)."
        ),
    )
    embedding_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key for the embeddings API; empty means llm_api_key. "
            "Environment only: POWERMEMO_EMBEDDING_API_KEY."
        ),
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


# POWERMEMO_* variables that are not settings: read by the CLI and the client; and the test
# suite's own, POWERMEMO_TEST_*.
OTHER_ENV_VARS = frozenset({CONFIG_ENV_VAR, "POWERMEMO_URL", "POWERMEMO_API_KEY"})
TEST_ENV_PREFIX = "POWERMEMO_TEST_"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def check_names(config_keys: list[str], environ: dict[str, str]) -> None:
    """Refuse options nothing reads: a misspelt key or variable would silently keep a
    default (POWERMEMO_ENV=production starting a development server)."""
    fields = sorted(Settings.model_fields)
    for key in config_keys:
        if key not in Settings.model_fields:
            raise SettingsError(
                f"unknown option '{key}' in the config file{_did_you_mean(key, fields)}"
            )
    variables = sorted(f"{ENV_PREFIX}{f.upper()}" for f in fields) + sorted(OTHER_ENV_VARS)
    for name in sorted(environ):
        upper = name.upper()
        if (
            upper.startswith(ENV_PREFIX)
            and not upper.startswith(TEST_ENV_PREFIX)
            and upper not in variables
        ):
            raise SettingsError(
                f"unknown environment variable {name}{_did_you_mean(name.upper(), variables)}"
            )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the config file, the environment and explicit overrides."""
    path = resolve_config_file(config_file)
    check_names(list(read_config_file(path)) if path else [], dict(os.environ))
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    finally:
        _config_file.reset(token)


def describe_error(error: SettingsError | ValidationError) -> str:
    """A configuration error in a line per problem, naming the option (no pydantic links)."""
    if isinstance(error, SettingsError):
        return str(error)
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        problems.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)
