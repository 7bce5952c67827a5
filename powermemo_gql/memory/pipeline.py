"""The memory pipeline: dated buffer text -> notes -> facts -> merged profile changes -> event.

Pure of the database: it reads the current profile given to it and returns the changes,
which the flush then writes in one transaction. No prompt is longer than the configured
context: a long buffer is summarized in chunks, long notes are extracted in parts, and the
merge is asked in batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from powermemo_gql.core.tokens import count_tokens, split_by_tokens, truncate_tokens
from powermemo_gql.memory.client import LLMClient
from powermemo_gql.memory.keys import Key, KeyIndex
from powermemo_gql.memory.parsing import (
    DecisionsAnswer,
    FactsAnswer,
    SummaryAnswer,
    TagsAnswer,
    Usage,
)
from powermemo_gql.memory.prompts import describe_slots, describe_tags
from powermemo_gql.memory.regroup import organize, shorten
from powermemo_gql.memory.steps import Asker, Instructions, as_json_text
from powermemo_gql.memory.transcript import Line, chunks, span
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.settings import Settings

# Summaries of summaries at most this deep; a model whose notes do not shrink stops there.
MAX_SUMMARY_ROUNDS = 3
# An unparsable answer is asked again once; transport failures have their own retries.
PARSE_ATTEMPTS = 2


@dataclass(frozen=True)
class CurrentEntry:
    id: uuid.UUID
    topic: str
    sub_topic: str
    content: str


@dataclass(frozen=True)
class Limits:
    max_subtopics: int  # a topic with more sub-topics is reorganised
    max_entry_tokens: int  # an entry this flush writes longer than this is shortened
    context_tokens: int  # the most tokens one prompt holds
    process_tokens: int  # the most buffer tokens summarized in one call

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_subtopics=settings.max_profile_subtopics,
            max_entry_tokens=settings.max_profile_entry_tokens,
            context_tokens=settings.llm_context_tokens,
            process_tokens=settings.max_process_tokens,
        )


@dataclass(frozen=True)
class ProfileChange:
    action: Literal["add", "update", "delete"]
    topic: str
    sub_topic: str
    content: str
    entry_id: uuid.UUID | None = None  # the entry updated
    previous: str | None = None


@dataclass
class ProfileChanges:
    changes: list[ProfileChange] = field(default_factory=list)
    # Entries the input spoke of that needed no change: still "mentioned" now.
    mentioned: list[uuid.UUID] = field(default_factory=list)


@dataclass
class PipelineResult:
    summary: str
    profile: ProfileChanges
    tags: list[dict[str, str]]
    usage: Usage = field(default_factory=Usage)
    # When what was processed was said: its first and last message time.
    happened: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class _Pending:
    """Observations the merge step must decide on."""

    key: Key
    observations: list[str]
    entry: CurrentEntry | None
    observed_as: str | None = None  # the new sub_topic, when matched to a close existing one

    def as_item(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "index": index,
            "topic": self.key[0],
            "sub_topic": self.key[1],
            "current": self.entry.content if self.entry else None,
            # One observation as text, several as a list (for the model to merge).
            "observation": (
                self.observations[0] if len(self.observations) == 1 else self.observations
            ),
        }
        if self.observed_as:
            item["observed_as"] = self.observed_as
        return item


class MemoryPipeline:
    def __init__(self, llm: LLMClient, attempts: int, limits: Limits) -> None:
        self._llm = llm
        self._attempts = attempts  # tries per step before the flush fails
        self._limits = limits

    @classmethod
    def from_settings(cls, llm: LLMClient, settings: Settings) -> MemoryPipeline:
        """The pipeline of flushes and imports alike."""
        return cls(llm, attempts=PARSE_ATTEMPTS, limits=Limits.from_settings(settings))

    def asker(self, usage: Usage) -> Asker:
        return Asker(self._llm, self._attempts, self._limits.context_tokens, usage)

    async def run(
        self,
        lines: Sequence[Line],
        profile: list[CurrentEntry],
        config: ProfileConfig,
        instructions: Instructions,
        zone: ZoneInfo,
        usage: Usage,
    ) -> PipelineResult:
        """Run every step; `usage` counts the LLM calls and tokens, also when a step fails."""
        ask = self.asker(usage)
        summary = await self._summarize(ask, lines, config, instructions, zone)
        changes = await self.changes_from(summary, profile, config, instructions, usage)
        tags = await self._tag(ask, summary, config, instructions)
        return PipelineResult(
            summary=summary, profile=changes, tags=tags, usage=usage, happened=span(lines)
        )

    async def _summarize(
        self,
        ask: Asker,
        lines: Sequence[Line],
        config: ProfileConfig,
        instructions: Instructions,
        zone: ZoneInfo,
    ) -> str:
        """Notes of the buffer: one call per chunk, then the notes of all chunks, summarized
        again (in parts) until they fit one prompt."""
        prompts = instructions.prompts
        hint = prompts.tags_hint.replace(
            "{tags}", ", ".join(t.description or t.name for t in config.event_tags)
        )
        system = instructions.system(prompts.summarize, tags_hint=hint if config.event_tags else "")
        budget = min(self._limits.process_tokens, ask.room(system))
        parts = chunks(lines, budget, zone)
        for _round in range(MAX_SUMMARY_ROUNDS):
            notes = [
                (await ask("summarize", system, part, SummaryAnswer)).summary.strip()
                for part in parts
            ]
            joined = "\n".join(n for n in notes if n)
            if len(parts) == 1 or count_tokens(joined) <= budget:
                break
            # Notes of many chunks, still too long for one prompt: their notes, in turn.
            parts = split_by_tokens(joined, budget * 97 // 100)
        # Past the last round (a model whose notes do not shrink) extract reads them in parts.
        return joined

    async def changes_from(
        self,
        notes: str,
        profile: list[CurrentEntry],
        config: ProfileConfig,
        instructions: Instructions,
        usage: Usage,
    ) -> ProfileChanges:
        """Facts in `notes`, merged into the profile: extract -> merge -> organize -> shorten."""
        ask = self.asker(usage)
        keys = KeyIndex(
            [(e.topic, e.sub_topic) for e in profile],
            [(s.topic, sub.name) for s in config.slots for sub in s.sub_topics],
        )
        observations = await self._extract(ask, notes, keys, config, instructions)
        if config.strict:
            observations = {k: v for k, v in observations.items() if config.allows(*k)}
        result = await self._merge(ask, observations, keys, profile, config, instructions)
        result.changes = await organize(
            ask, result.changes, profile, config, instructions, self._limits.max_subtopics
        )
        result.changes = await shorten(
            ask, result.changes, instructions, self._limits.max_entry_tokens
        )
        return result

    async def _extract(
        self,
        ask: Asker,
        notes: str,
        keys: KeyIndex,
        config: ProfileConfig,
        instructions: Instructions,
    ) -> dict[Key, list[str]]:
        """The facts of the notes, by key (the user's own spelling where one matches)."""
        prompts = instructions.prompts
        known = ""
        if keys.existing:
            # At most a quarter of the prompt: a huge profile must not crowd out the notes.
            listed = truncate_tokens(keys.describe(), self._limits.context_tokens // 4)
            known = prompts.existing_keys.replace("{keys}", listed)
        system = instructions.system(
            prompts.extract,
            slot_rule=(prompts.only_slots if config.strict else prompts.prefer_slots).replace(
                "{slots}", describe_slots(config)
            ),
            existing_keys=known,
        )
        by_key: dict[Key, list[str]] = {}
        for part in split_by_tokens(notes, max(1, ask.room(system) * 97 // 100)):
            answer = await ask("extract", system, part, FactsAnswer)
            for fact in answer.facts:
                key = keys.key(fact.topic, fact.sub_topic)
                content = fact.content.strip()
                if content and content not in by_key.setdefault(key, []):
                    by_key[key].append(content)
        return by_key

    async def _merge(
        self,
        ask: Asker,
        observations: dict[Key, list[str]],
        keys: KeyIndex,
        profile: list[CurrentEntry],
        config: ProfileConfig,
        instructions: Instructions,
    ) -> ProfileChanges:
        current = {(e.topic, e.sub_topic): e for e in profile}
        result = ProfileChanges()
        # What the LLM must decide on: every observation of an existing or close entry,
        # several observations of one new entry (the model merges lists), and every new
        # entry in validate mode. A single new observation is added as it is.
        by_key: dict[Key, _Pending] = {}
        close: list[tuple[Key, Key, list[str]]] = []
        for key, contents in observations.items():
            entry = current.get(key)
            near = keys.close_to(key) if entry is None else None
            if near is not None:
                close.append((near, key, contents))
            elif entry is None and len(contents) == 1 and not config.validate_entries:
                result.changes.append(ProfileChange("add", key[0], key[1], contents[0]))
            else:
                by_key[key] = _Pending(key, contents, entry)
        for near, key, contents in close:
            same = by_key.get(near)
            if same is not None and same.observed_as is None:
                # The entry was also named as it is: one item with all its observations.
                by_key[near] = _Pending(near, same.observations + contents, same.entry)
            elif same is None:
                by_key[near] = _Pending(near, contents, current[near], observed_as=key[1])
            else:  # a second close name for that entry: asked about as a new entry
                by_key[key] = _Pending(key, contents, None)
        pending = list(by_key.values())
        if not pending:
            return result

        descriptions = describe_slots(config) + "\n" if config.validate_entries else ""
        system = instructions.system(instructions.prompts.merge, slot_descriptions=descriptions)
        indexed = list(enumerate(pending))
        for batch in ask.batches(system, indexed, lambda pair: pair[1].as_item(pair[0])):
            answer = await ask(
                "merge",
                system,
                as_json_text([item.as_item(i) for i, item in batch]),
                DecisionsAnswer,
            )
            decided = {d.index: d for d in answer.decisions}
            for index, item in batch:
                decision = decided.get(index)
                if decision is not None:
                    _decide(item, decision.action, decision.content, current, result)
        return result

    async def _tag(
        self, ask: Asker, summary: str, config: ProfileConfig, instructions: Instructions
    ) -> list[dict[str, str]]:
        if not config.event_tags:
            return []
        system = instructions.system(
            instructions.prompts.tag_event, language=False, tags=describe_tags(config)
        )
        text = truncate_tokens(summary, max(1, ask.room(system)))
        answer = await ask("tag_event", system, text, TagsAnswer)
        allowed = {t.name for t in config.event_tags}
        return [{"tag": t.tag, "value": t.value} for t in answer.tags if t.tag in allowed]


def _decide(
    item: _Pending,
    action: str,
    content: str | None,
    current: dict[Key, CurrentEntry],
    result: ProfileChanges,
) -> None:
    """Turn one merge decision into a change (or a mention of an entry left as it is)."""
    entry = item.entry
    if action == "abort":
        if entry is not None:
            result.mentioned.append(entry.id)
        return
    new_content = (content or "\n".join(item.observations)).strip()
    if action == "add" and item.observed_as is not None:
        # Kept apart from the close entry, under the key it was observed as.
        key = (item.key[0], item.observed_as)
        if key not in current:
            result.changes.append(ProfileChange("add", key[0], key[1], new_content))
        return
    if entry is None:
        result.changes.append(ProfileChange("add", item.key[0], item.key[1], new_content))
    elif new_content != entry.content:
        result.changes.append(
            ProfileChange("update", item.key[0], item.key[1], new_content, entry.id, entry.content)
        )
    else:
        result.mentioned.append(entry.id)
