"""The pipeline's last steps: regroup a topic grown too large, and shorten long entries.

Both bounds are the server's: a regrouped topic keeps at most half its trigger (so the next
flush does not regroup it again), and an entry is cut to max_entry_tokens by token count
whatever the model wrote.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from powermemo_gql.core.tokens import count_tokens, truncate_tokens
from powermemo_gql.memory.parsing import OrganizeAnswer, ShortenAnswer
from powermemo_gql.memory.steps import Asker, Instructions, as_json_text
from powermemo_gql.profiles.config import ProfileConfig

if TYPE_CHECKING:
    from powermemo_gql.memory.pipeline import CurrentEntry, ProfileChange

# Roughly how many English words make a token budget (for instructions a model can follow).
WORDS_PER_TOKEN = 0.7


def regroup_target(max_subtopics: int) -> int:
    """How many sub-topics a regrouped topic keeps: half the trigger, so it has room to grow."""
    return max(1, max_subtopics // 2)


async def organize(
    ask: Asker,
    changes: list[ProfileChange],
    profile: list[CurrentEntry],
    config: ProfileConfig,
    instructions: Instructions,
    max_subtopics: int,
) -> list[ProfileChange]:
    """Regroup each topic that would pass max_subtopics after these changes."""
    from powermemo_gql.memory.pipeline import ProfileChange

    projected: dict[str, dict[str, str]] = {}
    for entry in profile:
        projected.setdefault(entry.topic, {})[entry.sub_topic] = entry.content
    for change in changes:
        if change.action == "delete":
            projected.get(change.topic, {}).pop(change.sub_topic, None)
        else:
            projected.setdefault(change.topic, {})[change.sub_topic] = change.content
    target = regroup_target(max_subtopics)
    system = instructions.system(instructions.prompts.organize, limit=str(target))
    for topic, entries in projected.items():
        if len(entries) <= max_subtopics:
            continue
        request = as_json_text(
            {
                "topic": topic,
                "entries": [{"sub_topic": k, "content": v} for k, v in entries.items()],
            }
        )
        if count_tokens(request) > ask.room(system):
            continue  # too large to regroup in one prompt; stays as it is
        answer = await ask("organize", system, request, OrganizeAnswer)
        regrouped = _within(
            [
                (e.sub_topic.strip(), e.content.strip())
                for e in answer.entries
                # Strict mode holds here too: no sub-topic the slots do not name.
                if not config.strict or config.allows(topic, e.sub_topic.strip())
            ],
            target,
        )
        if not regrouped:
            continue
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
                        "update", topic, sub_topic, regrouped[sub_topic], entry.id, entry.content
                    )
                )
        changes.extend(
            ProfileChange("add", topic, sub_topic, content)
            for sub_topic, content in regrouped.items()
            if sub_topic not in current
        )
    return changes


def _within(entries: list[tuple[str, str]], target: int) -> dict[str, str]:
    """At most `target` sub-topics: what a model returned past that is folded into the last
    one kept (shortened later like any long entry), not lost."""
    regrouped: dict[str, str] = {}
    for sub_topic, content in entries:
        if sub_topic in regrouped:
            regrouped[sub_topic] += "\n" + content
        elif len(regrouped) < target:
            regrouped[sub_topic] = content
        else:
            last = next(reversed(regrouped))
            regrouped[last] += "\n" + content
    return regrouped


async def shorten(
    ask: Asker, changes: list[ProfileChange], instructions: Instructions, limit: int
) -> list[ProfileChange]:
    """Re-summarise the entries this flush writes past `limit` tokens, then cut what is
    still too long: the model is asked for words, the server counts tokens."""
    long = [
        i for i, c in enumerate(changes) if c.action != "delete" and count_tokens(c.content) > limit
    ]
    if not long:
        return changes
    shortened = list(changes)
    system = instructions.system(
        instructions.prompts.shorten, words=str(max(8, int(limit * WORDS_PER_TOKEN)))
    )

    def item(n: int) -> dict[str, object]:
        change = changes[long[n]]
        return {
            "index": n,
            "topic": change.topic,
            "sub_topic": change.sub_topic,
            "content": change.content,
        }

    for batch in ask.batches(system, list(range(len(long))), item):
        answer = await ask("shorten", system, as_json_text([item(n) for n in batch]), ShortenAnswer)
        asked = set(batch)
        for entry in answer.entries:
            if entry.index in asked:
                i = long[entry.index]
                shortened[i] = dataclasses.replace(changes[i], content=entry.content.strip())
    return [
        dataclasses.replace(c, content=truncate_tokens(c.content, limit))
        if c.action != "delete"
        else c
        for c in shortened
    ]
