"""The memory pipeline: buffered text -> summary -> facts -> merged profile changes -> event.

Pure of the database: it reads the current profile given to it and returns the changes,
which the flush then writes in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from typing import Literal

from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.memory.client import LLMClient
from powermemo_gql.memory.parsing import (
    DecisionsAnswer,
    Fact,
    FactsAnswer,
    M,
    OrganizeAnswer,
    ShortenAnswer,
    SummaryAnswer,
    TagsAnswer,
    Usage,
    ask,
)
from powermemo_gql.memory.prompts import Prompts, describe_slots, describe_tags
from powermemo_gql.profiles.config import ProfileConfig


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


@dataclass(frozen=True)
class ProfileChange:
    action: Literal["add", "update", "delete"]
    topic: str
    sub_topic: str
    content: str
    entry_id: uuid.UUID | None = None  # the entry updated
    previous: str | None = None


@dataclass
class PipelineResult:
    summary: str
    changes: list[ProfileChange]
    tags: list[dict[str, str]]
    usage: Usage = field(default_factory=Usage)


def _combine(facts: list[Fact]) -> dict[tuple[str, str], str]:
    """One observation per (topic, sub_topic): facts on the same slot are joined."""
    combined: dict[tuple[str, str], list[str]] = {}
    for fact in facts:
        key = (fact.topic.strip(), fact.sub_topic.strip())
        if fact.content.strip() not in combined.setdefault(key, []):
            combined[key].append(fact.content.strip())
    return {key: "; ".join(contents) for key, contents in combined.items()}


class MemoryPipeline:
    def __init__(self, llm: LLMClient, attempts: int, limits: Limits) -> None:
        self._llm = llm
        self._attempts = attempts  # tries per step before the flush fails
        self._limits = limits

    async def run(
        self,
        texts: list[str],
        profile: list[CurrentEntry],
        config: ProfileConfig,
        prompts: Prompts,
        keep_input_language: bool,
        usage: Usage,
    ) -> PipelineResult:
        """Run every step; `usage` counts the LLM calls and tokens, also when a step fails."""
        language_rule = prompts.keep_language if keep_input_language else prompts.output_language

        summary = await self._ask(
            "summarize",
            f"{prompts.summarize}\n{language_rule}",
            "\n\n---\n\n".join(texts),
            SummaryAnswer,
            usage,
        )
        changes = await self.changes_from(
            summary.summary, profile, config, prompts, language_rule, usage
        )
        tags = await self._tag(summary.summary, config, prompts, usage)
        return PipelineResult(summary=summary.summary, changes=changes, tags=tags, usage=usage)

    async def _ask(self, purpose: str, system: str, user: str, model: type[M], usage: Usage) -> M:
        return await ask(self._llm, purpose, system, user, model, usage, self._attempts)

    async def changes_from(
        self,
        notes: str,
        profile: list[CurrentEntry],
        config: ProfileConfig,
        prompts: Prompts,
        language_rule: str,
        usage: Usage,
    ) -> list[ProfileChange]:
        """Facts in `notes`, merged into the profile: extract -> merge -> organize -> shorten."""
        facts = await self._ask(
            "extract",
            prompts.extract.replace("{slots}", describe_slots(config)) + "\n" + language_rule,
            notes,
            FactsAnswer,
            usage,
        )
        observations = _combine(facts.facts)
        if config.strict:
            observations = {k: v for k, v in observations.items() if config.allows(*k)}
        changes = await self._merge(observations, profile, config, prompts, language_rule, usage)
        changes = await self._organize(changes, profile, config, prompts, language_rule, usage)
        return await self._shorten(changes, prompts, language_rule, usage)

    async def _merge(
        self,
        observations: dict[tuple[str, str], str],
        profile: list[CurrentEntry],
        config: ProfileConfig,
        prompts: Prompts,
        language_rule: str,
        usage: Usage,
    ) -> list[ProfileChange]:
        current = {(e.topic, e.sub_topic): e for e in profile}
        changes: list[ProfileChange] = []
        # Items the LLM must decide on: every update, and new entries in validate mode.
        pending: list[tuple[tuple[str, str], str, CurrentEntry | None]] = []
        for key, content in observations.items():
            entry = current.get(key)
            if entry is None and not config.validate_entries:
                changes.append(ProfileChange("add", key[0], key[1], content))
            else:
                pending.append((key, content, entry))
        if not pending:
            return changes

        items = [
            {
                "index": i,
                "topic": key[0],
                "sub_topic": key[1],
                "current": entry.content if entry else None,
                "observation": content,
            }
            for i, (key, content, entry) in enumerate(pending)
        ]
        descriptions = describe_slots(config) + "\n" if config.validate_entries else ""
        answer = await self._ask(
            "merge",
            prompts.merge.replace("{slot_descriptions}", descriptions) + "\n" + language_rule,
            json.dumps(items, ensure_ascii=False),
            DecisionsAnswer,
            usage,
        )
        decided = {d.index: d for d in answer.decisions if d.index < len(pending)}
        for index, (key, content, entry) in enumerate(pending):
            decision = decided.get(index)
            if decision is None or decision.action == "abort":
                continue
            new_content = (decision.content or content).strip()
            if entry is None:
                changes.append(ProfileChange("add", key[0], key[1], new_content))
            elif new_content != entry.content:
                changes.append(
                    ProfileChange("update", key[0], key[1], new_content, entry.id, entry.content)
                )
        return changes

    async def _organize(
        self,
        changes: list[ProfileChange],
        profile: list[CurrentEntry],
        config: ProfileConfig,
        prompts: Prompts,
        language_rule: str,
        usage: Usage,
    ) -> list[ProfileChange]:
        """Regroup each topic that would pass max_subtopics after these changes."""
        projected: dict[str, dict[str, str]] = {}
        for entry in profile:
            projected.setdefault(entry.topic, {})[entry.sub_topic] = entry.content
        for change in changes:
            projected.setdefault(change.topic, {})[change.sub_topic] = change.content
        limit = self._limits.max_subtopics
        for topic, entries in projected.items():
            if len(entries) <= limit:
                continue
            answer = await self._ask(
                "organize",
                prompts.organize.replace("{limit}", str(limit)) + "\n" + language_rule,
                json.dumps(
                    {
                        "topic": topic,
                        "entries": [{"sub_topic": k, "content": v} for k, v in entries.items()],
                    },
                    ensure_ascii=False,
                ),
                OrganizeAnswer,
                usage,
            )
            regrouped = {
                e.sub_topic.strip(): e.content.strip()
                for e in answer.entries[:limit]
                # Strict mode holds here too: no sub-topic the slots do not name.
                if not config.strict or config.allows(topic, e.sub_topic.strip())
            }
            current = {e.sub_topic: e for e in profile if e.topic == topic}
            changes = [c for c in changes if c.topic != topic]
            for sub_topic, entry in current.items():
                if sub_topic not in regrouped:
                    changes.append(
                        ProfileChange("delete", topic, sub_topic, "", entry.id, entry.content)
                    )
                elif regrouped[sub_topic] != entry.content:
                    changes.append(
                        ProfileChange(
                            "update",
                            topic,
                            sub_topic,
                            regrouped[sub_topic],
                            entry.id,
                            entry.content,
                        )
                    )
            changes.extend(
                ProfileChange("add", topic, sub_topic, content)
                for sub_topic, content in regrouped.items()
                if sub_topic not in current
            )
        return changes

    async def _shorten(
        self, changes: list[ProfileChange], prompts: Prompts, language_rule: str, usage: Usage
    ) -> list[ProfileChange]:
        """Re-summarise, in one call, the entries this flush writes past max_entry_tokens."""
        limit = self._limits.max_entry_tokens
        long = [
            i
            for i, c in enumerate(changes)
            if c.action != "delete" and count_tokens(c.content) > limit
        ]
        if not long:
            return changes
        answer = await self._ask(
            "shorten",
            prompts.shorten.replace("{limit}", str(limit)) + "\n" + language_rule,
            json.dumps(
                [
                    {
                        "index": n,
                        "topic": changes[i].topic,
                        "sub_topic": changes[i].sub_topic,
                        "content": changes[i].content,
                    }
                    for n, i in enumerate(long)
                ],
                ensure_ascii=False,
            ),
            ShortenAnswer,
            usage,
        )
        shortened = list(changes)
        for item in answer.entries:
            if item.index < len(long):
                i = long[item.index]
                shortened[i] = dataclasses.replace(changes[i], content=item.content.strip())
        return shortened

    async def _tag(
        self, summary: str, config: ProfileConfig, prompts: Prompts, usage: Usage
    ) -> list[dict[str, str]]:
        if not config.event_tags:
            return []
        answer = await self._ask(
            "tag_event",
            prompts.tag_event.replace("{tags}", describe_tags(config)),
            summary,
            TagsAnswer,
            usage,
        )
        allowed = {t.name for t in config.event_tags}
        return [{"tag": t.tag, "value": t.value} for t in answer.tags if t.tag in allowed]
