"""Flushes know when things were said, reuse the user's keys, and say what the server enforces.

Everything goes through the real openai client to the scripted loopback LLM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette

from powermemo_gql.buffers.models import FlushStepUsage
from powermemo_gql.resources import Resources
from tests.integration.memory.conftest import AppFactory, memory_responder
from tests.llm_server import Reply, ScriptedLLM, json_reply
from tests.support import ProjectHandle

SETUP_USER = 'mutation { createUser(input: {userId: "alice"}) { __typename } }'
INSERT_MESSAGES = """
mutation($messages: [ChatMessageInput!]!) {
  insertBlob(input: {userId: "alice", blob: {chat: {messages: $messages}}}) {
    ... on InsertBlobPayload { blob { id } }
  }
}
"""
INSERT_DOCUMENT = """
mutation($content: String!) {
  insertBlob(input: {userId: "alice", blob: {document: {content: $content}}}) { __typename }
}
"""
FLUSH = """
mutation {
  flushBuffer(input: {userId: "alice", wait: true}) {
    ... on FlushBufferPayload { flush { status error llmCalls inputTokens droppedItems } }
  }
}
"""
MEMORY = """
{ user(userId: "alice") {
    profile { topic subTopic content lastMentionedAt }
    events(first: 10) { nodes { summary happenedFrom happenedTo createdAt } }
} }
"""
USAGE = "{ llmUsage { llmCalls inputTokens outputTokens steps { step llmCalls inputTokens } } }"
SET_CONFIG = """
mutation($input: ProfileConfigInput!) {
  setProfileConfig(input: $input) { __typename ... on InvalidInput { field message } }
}
"""


def _message(text: str, at: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "USER", "content": text}
    if at is not None:
        message["createdAt"] = at
    return message


def _system(request: dict[str, Any]) -> str:
    content: str = request["body"]["messages"][0]["content"]
    return content


def _user(request: dict[str, Any]) -> str:
    content: str = request["body"]["messages"][1]["content"]
    return content


def _of(llm: ScriptedLLM, purpose: str) -> list[dict[str, Any]]:
    return [r for r in llm.requests if r["headers"].get("x-powermemo-purpose") == purpose]


def _answering(
    extra: dict[str, Callable[[dict[str, Any]], Any]], base: Callable[[dict[str, Any]], Reply]
) -> Callable[[dict[str, Any]], Reply]:
    """Steps named in `extra` answer from the request they get; the rest as `base`."""

    def respond(request: dict[str, Any]) -> Reply:
        purpose = request["headers"].get("x-powermemo-purpose", "")
        if purpose in extra:
            return json_reply(extra[purpose](request), prompt_tokens=50, completion_tokens=10)
        return base(request)

    return respond


async def _flush(api: Any) -> dict[str, Any]:
    flush: dict[str, Any] = (await api.ok(FLUSH))["flushBuffer"]["flush"]
    assert flush["status"] == "DONE", flush
    return flush


async def test_summarize_input_is_dated(project: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    api = project.api
    await api.ok(SETUP_USER)
    await api.ok(
        INSERT_MESSAGES,
        messages=[
            _message("I went hiking yesterday.", "2024-03-04T09:15:00+00:00"),
            _message("The boots hurt a bit.", "2024-03-04T09:20:00+00:00"),
            _message("Back home, legs sore.", "2024-03-04T18:40:00+00:00"),
        ],
    )
    await api.ok(
        INSERT_MESSAGES, messages=[_message("Next month I move to Porto.", "2024-03-06T08:00:00Z")]
    )
    await _flush(api)

    (summarize,) = _of(llm, "summarize")
    assert _user(summarize) == (
        "[2024-03-04 Mon]\n"
        "09:15 user: I went hiking yesterday.\n"
        "user: The boots hurt a bit.\n"
        "18:40 user: Back home, legs sore.\n"
        "[2024-03-06 Wed]\n"
        "08:00 user: Next month I move to Porto.\n"
    )
    system = _system(summarize)
    assert "relative times" in system
    assert "[said YYYY-MM-DD]" in system

    memory = (await api.ok(MEMORY))["user"]
    (event,) = memory["events"]["nodes"]
    assert event["happenedFrom"] == "2024-03-04T09:15:00+00:00"
    assert event["happenedTo"] == "2024-03-06T08:00:00+00:00"
    assert event["createdAt"].startswith(str(datetime.now(UTC).year))
    for entry in memory["profile"]:
        assert entry["lastMentionedAt"] == "2024-03-06T08:00:00+00:00"


async def test_time_zone_of_the_dates(llm: ScriptedLLM, make_app: AppFactory) -> None:
    llm.responder = memory_responder()
    async with make_app(timezone="Asia/Tokyo") as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_MESSAGES, messages=[_message("Late call.", "2024-03-04T20:00:00Z")])
        await _flush(api)
    (summarize,) = _of(llm, "summarize")
    assert _user(summarize) == "[2024-03-05 Tue]\n05:00 user: Late call.\n"


async def test_messages_without_a_date_take_their_insertion_time(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    await project.api.ok(SETUP_USER)
    await project.api.ok(INSERT_MESSAGES, messages=[_message("Undated.")])
    before = datetime.now(UTC)
    await _flush(project.api)
    (summarize,) = _of(llm, "summarize")
    header = _user(summarize).splitlines()[0]
    assert header[1:11] in {before.strftime("%Y-%m-%d"), datetime.now(UTC).strftime("%Y-%m-%d")}
    (event,) = (await project.api.ok(MEMORY))["user"]["events"]["nodes"]
    assert event["happenedFrom"] == event["happenedTo"]


async def test_events_are_listed_by_when_they_happened(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    """An older history imported later comes after the newer events, not first."""
    api = project.api
    await api.ok(SETUP_USER)
    llm.responder = memory_responder(summary="- Moved to Porto [said 2024-06-01]")
    await api.ok(INSERT_MESSAGES, messages=[_message("I moved.", "2024-06-01T10:00:00Z")])
    await _flush(api)
    llm.responder = memory_responder(summary="- Started school [said 2019-09-01]")
    await api.ok(INSERT_MESSAGES, messages=[_message("School starts.", "2019-09-01T10:00:00Z")])
    await _flush(api)
    events = (await api.ok(MEMORY))["user"]["events"]["nodes"]
    assert [e["summary"] for e in events] == [
        "- Moved to Porto [said 2024-06-01]",
        "- Started school [said 2019-09-01]",
    ]
    # The entries keep the latest mention, not the one imported last.
    profile = (await api.ok(MEMORY))["user"]["profile"]
    assert {e["lastMentionedAt"] for e in profile} == {"2024-06-01T10:00:00+00:00"}


async def test_paraphrased_keys_end_in_one_entry(project: ProjectHandle, llm: ScriptedLLM) -> None:
    """The model names the same slot differently in a later flush; the server sends it to
    merge with the existing entry, and no duplicate is made."""
    api = project.api
    await api.ok(SETUP_USER)
    llm.responder = memory_responder(
        facts=[{"topic": "interest", "sub_topic": "hiking", "content": "Hikes in the Alps"}]
    )
    await api.ok(INSERT_DOCUMENT, content="I love hiking in the Alps.")
    await _flush(api)

    def paraphrase(request: dict[str, Any]) -> Any:
        # The existing key reaches the prompt; this model paraphrases it anyway.
        assert "interest: hiking" in _system(request)
        return {
            "facts": [
                {"topic": "Interests", "sub_topic": "Hiking Trips", "content": "Hiked Etna"},
                {"topic": "INTEREST", "sub_topic": "hiking", "content": "Hikes weekly"},
            ]
        }

    def merge(request: dict[str, Any]) -> Any:
        items = json.loads(_user(request))
        return {
            "decisions": [
                {"index": i["index"], "action": "update", "content": "Hikes weekly; Alps, Etna"}
                for i in items
            ]
        }

    llm.responder = _answering({"extract": paraphrase, "merge": merge}, memory_responder())
    await api.ok(INSERT_DOCUMENT, content="I hiked Etna last week and I hike weekly.")
    await _flush(api)

    (merge_request,) = _of(llm, "merge")
    # Both names mean the existing entry: one item, both observations.
    assert json.loads(_user(merge_request)) == [
        {
            "index": 0,
            "topic": "interest",
            "sub_topic": "hiking",
            "current": "Hikes in the Alps",
            "observation": ["Hikes weekly", "Hiked Etna"],
        }
    ]
    profile = (await api.ok(MEMORY))["user"]["profile"]
    assert [(e["topic"], e["subTopic"]) for e in profile] == [("interest", "hiking")]


async def test_a_close_key_the_model_keeps_apart(project: ProjectHandle, llm: ScriptedLLM) -> None:
    api = project.api
    await api.ok(SETUP_USER)
    llm.responder = memory_responder(
        facts=[{"topic": "interest", "sub_topic": "music", "content": "Jazz"}]
    )
    await api.ok(INSERT_DOCUMENT, content="I like jazz.")
    await _flush(api)
    llm.responder = _answering(
        {
            "extract": lambda _r: {
                "facts": [{"topic": "interest", "sub_topic": "music_lessons", "content": "Piano"}]
            },
            "merge": lambda _r: {"decisions": [{"index": 0, "action": "add", "content": "Piano"}]},
        },
        memory_responder(),
    )
    await api.ok(INSERT_DOCUMENT, content="I take piano lessons.")
    await _flush(api)
    (merge_request,) = _of(llm, "merge")
    (item,) = json.loads(_user(merge_request))
    assert (item["sub_topic"], item["current"], item["observed_as"]) == (
        "music",
        "Jazz",
        "music_lessons",
    )
    profile = {e["subTopic"]: e["content"] for e in (await api.ok(MEMORY))["user"]["profile"]}
    assert profile == {"music": "Jazz", "music_lessons": "Piano"}


async def test_list_like_facts_are_merged_by_the_model(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = project.api
    await api.ok(SETUP_USER)
    llm.responder = _answering(
        {
            "extract": lambda _r: {
                "facts": [
                    {"topic": "interest", "sub_topic": "foods", "content": "ramen"},
                    {"topic": "interest", "sub_topic": "foods", "content": "falafel"},
                ]
            },
            "merge": lambda _r: {
                "decisions": [{"index": 0, "action": "add", "content": "ramen, falafel"}]
            },
        },
        memory_responder(),
    )
    await api.ok(INSERT_DOCUMENT, content="I love ramen. And falafel.")
    await _flush(api)
    (merge_request,) = _of(llm, "merge")
    assert json.loads(_user(merge_request))[0]["observation"] == ["ramen", "falafel"]
    profile = (await api.ok(MEMORY))["user"]["profile"]
    assert [e["content"] for e in profile] == ["ramen, falafel"]


async def test_a_redundant_mention_updates_last_mentioned(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = project.api
    await api.ok(SETUP_USER)
    llm.responder = memory_responder(
        facts=[{"topic": "work", "sub_topic": "title", "content": "chemistry teacher"}]
    )
    await api.ok(INSERT_MESSAGES, messages=[_message("I teach chemistry.", "2024-01-01T10:00:00Z")])
    await _flush(api)
    llm.responder = memory_responder(
        facts=[{"topic": "work", "sub_topic": "title", "content": "teaches chemistry"}],
        decisions=[{"index": 0, "action": "abort"}],
    )
    await api.ok(INSERT_MESSAGES, messages=[_message("Still teaching.", "2024-05-01T10:00:00Z")])
    await _flush(api)
    (entry,) = (await api.ok(MEMORY))["user"]["profile"]
    assert entry["content"] == "chemistry teacher"
    assert entry["lastMentionedAt"] == "2024-05-01T10:00:00+00:00"


async def test_prompts_state_strict_mode_tags_and_the_app(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = project.api
    config = {
        "slots": [{"topic": "work", "subTopics": [{"name": "title"}]}],
        "strict": True,
        "eventTags": [{"name": "mood", "description": "how the user feels"}],
        "systemPrompt": "A language tutor: track the learner's level and mistakes.",
    }
    assert (await api.ok(SET_CONFIG, input=config))["setProfileConfig"]["__typename"] == (
        "SetProfileConfigPayload"
    )
    await api.ok(SETUP_USER)
    llm.responder = memory_responder()
    await api.ok(INSERT_DOCUMENT, content="I am tired today.")
    await _flush(api)

    assert [r["headers"]["x-powermemo-purpose"] for r in llm.requests] == [
        "summarize",
        "extract",
        "tag_event",
    ]
    for request in llm.requests:
        assert _system(request).startswith(
            "About the app these memories serve: A language tutor: track the learner's level"
        )
    assert "Note especially anything about: how the user feels." in _system(llm.requests[0])
    assert "Use only these topics and sub-topics; facts that fit none are dropped" in _system(
        llm.requests[1]
    )
    # Lenient mode says so instead.
    config["strict"] = False
    await api.ok(SET_CONFIG, input=config)
    await api.ok(INSERT_DOCUMENT, content="More.")
    await _flush(api)
    assert "Prefer these topics" in _system(_of(llm, "extract")[-1])


async def test_server_wide_system_prompt(llm: ScriptedLLM, make_app: AppFactory) -> None:
    llm.responder = memory_responder()
    async with make_app(system_prompt="A cooking assistant.") as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_DOCUMENT, content="I bake bread.")
        await _flush(api)
    assert all(
        _system(r).startswith("About the app these memories serve: A cooking assistant.")
        for r in llm.requests
    )


async def test_a_huge_message_is_summarized_in_chunks(
    llm: ScriptedLLM, make_app: AppFactory
) -> None:
    """A 200,000-character message: every part reaches the model, no prompt over the limit."""
    from powermemo_gql.core.tokens import count_tokens

    words = [f"w{i}" for i in range(40_000)]
    text = " ".join(words)[:200_000]
    llm.responder = _answering(
        {"summarize": lambda r: {"summary": f"- part of {len(_user(r))} chars"}},
        memory_responder(),
    )
    async with make_app(llm_context_tokens=6000, max_process_tokens=5000) as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_MESSAGES, messages=[_message(text, "2024-03-04T09:00:00Z")])
        await _flush(api)
    summaries = _of(llm, "summarize")
    assert len(summaries) >= 10
    for request in llm.requests:
        assert count_tokens(_system(request)) + count_tokens(_user(request)) <= 6000
    seen = "".join(_user(r) for r in summaries)
    for word in (words[0], words[len(words) // 2], text.split()[-1]):
        assert f" {word} " in f" {seen.replace(chr(10), ' ')} "


async def test_entry_length_is_enforced_by_tokens(llm: ScriptedLLM, make_app: AppFactory) -> None:
    from powermemo_gql.core.tokens import count_tokens

    long_text = "teaches organic chemistry to evening classes, " * 20
    llm.responder = _answering(
        # The model ignores the limit: the server cuts.
        {"shorten": lambda _r: {"entries": [{"index": 0, "content": long_text}]}},
        memory_responder(facts=[{"topic": "work", "sub_topic": "title", "content": long_text}]),
    )
    async with make_app(max_profile_entry_tokens=32) as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_DOCUMENT, content="About my job.")
        await _flush(api)
        (entry,) = (await api.ok(MEMORY))["user"]["profile"]
    assert count_tokens(entry["content"]) <= 32
    assert entry["content"].startswith("teaches organic chemistry")
    assert "about 22 words" in _system(_of(llm, "shorten")[0])


async def test_usage_per_step(project: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    await project.api.ok(SETUP_USER)
    await project.api.ok(INSERT_DOCUMENT, content="I teach chemistry in Lyon.")
    flush = await _flush(project.api)
    assert flush["droppedItems"] == 0
    usage = (await project.api.ok(USAGE))["llmUsage"]
    steps = {s["step"]: s for s in usage["steps"]}
    assert set(steps) == {"SUMMARIZE", "EXTRACT"}
    assert sum(s["llmCalls"] for s in steps.values()) == usage["llmCalls"] == 2
    assert sum(s["inputTokens"] for s in steps.values()) == usage["inputTokens"]


async def test_a_step_this_version_does_not_know_counts_as_other(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    """A row written by a newer instance (a step added later) must not break llmUsage."""
    llm.responder = memory_responder()
    await project.api.ok(SETUP_USER)
    await project.api.ok(INSERT_DOCUMENT, content="I teach chemistry in Lyon.")
    await _flush(project.api)
    resources: Resources = app.state.resources
    async with resources.sessions() as session, session.begin():
        known = (await session.scalars(select(FlushStepUsage))).first()
        assert known is not None
        session.add(
            FlushStepUsage(
                flush_id=known.flush_id, step="rerank", project_id=known.project_id, calls=1
            )
        )
    steps = {s["step"]: s for s in (await project.api.ok(USAGE))["llmUsage"]["steps"]}
    assert set(steps) == {"SUMMARIZE", "EXTRACT", "OTHER"}
    assert steps["OTHER"]["llmCalls"] == 1


async def test_notes_that_do_not_shrink_stop_after_bounded_rounds(
    llm: ScriptedLLM, make_app: AppFactory
) -> None:
    """A model that echoes its input never shortens the notes: the server stops re-summarizing
    after a few rounds and extracts from them in parts."""
    llm.responder = _answering({"summarize": lambda r: {"summary": _user(r)}}, memory_responder())
    text = " ".join(f"w{i}" for i in range(12_000))
    async with make_app(llm_context_tokens=4000, max_process_tokens=3000) as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_DOCUMENT, content=text)
        await _flush(api)
    from powermemo_gql.core.tokens import count_tokens

    per_round = count_tokens(text) // (3000 * 9 // 10) + 2  # chunks of one round, at most
    summarize_calls = len(_of(llm, "summarize"))
    assert per_round < summarize_calls <= 3 * per_round  # more than one round, at most three
    assert len(_of(llm, "extract")) > 1  # the notes, still long, extracted in parts


async def test_a_context_too_small_for_the_prompts_fails_the_flush_clearly(
    llm: ScriptedLLM, make_app: AppFactory
) -> None:
    llm.responder = memory_responder()
    async with make_app(llm_context_tokens=1000, system_prompt="x " * 1900) as api:
        await api.ok(SETUP_USER)
        await api.ok(INSERT_DOCUMENT, content="Hello.")
        flush = (await api.ok(FLUSH))["flushBuffer"]["flush"]
    assert flush["status"] == "FAILED"
    assert "llm_context_tokens (1000) leaves" in flush["error"]
    assert llm.requests == []
