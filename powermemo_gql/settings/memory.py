"""Options of memory making: buffers and flushes, the LLM, embeddings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from powermemo_gql.settings.fields import seconds


class FlushOptions(BaseModel):
    """When buffers become memory, and what a profile may hold."""

    max_buffer_tokens: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="A user's buffer is flushed once its idle items hold more tokens than this.",
    )
    buffer_flush_interval: float = seconds(
        3600.0, description="Seconds without a new item after which a buffer is flushed anyway."
    )
    flush_lease_seconds: float = seconds(
        60.0,
        most=3600,
        description=(
            "Length of a flush's per-user lease, renewed every third of it while the flush runs; "
            "the items of a flush whose process died are flushed again once it runs out."
        ),
    )
    flush_timeout_seconds: float = seconds(
        600.0,
        most=86_400,
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


class ModelOptions(BaseModel):
    """The LLM that writes memory and the embeddings that search it."""

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
    llm_timeout_seconds: float = seconds(
        60.0, most=600, description="Time limit of one LLM request."
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
    llm_retry_backoff_seconds: float = seconds(
        1.0,
        most=60,
        zero=True,
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
    embedding_timeout_seconds: float = seconds(
        30.0, most=600, description="Time limit of one embedding request."
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
    embedding_query_cache_size: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description=(
            "Query texts whose vectors each process keeps (least recently used dropped "
            "first), so a search or context asked again embeds nothing; 0 turns it off."
        ),
    )
    embedding_catchup_seconds: float = seconds(
        30.0,
        most=3600,
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
