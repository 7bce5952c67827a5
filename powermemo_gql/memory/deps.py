"""What memory making works with: the flush, its scheduler and the importer share one set."""

from __future__ import annotations

from dataclasses import dataclass

from powermemo_gql.changes.feed import Feed
from powermemo_gql.core.clock import Clock
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.memory.client import LLMClient
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.settings import Settings


@dataclass(frozen=True)
class MemoryDeps:
    sessions: SessionFactory
    llm: LLMClient
    feed: Feed  # committed changes are announced through it
    settings: Settings
    clock: Clock
    metrics: Metrics | None = None
