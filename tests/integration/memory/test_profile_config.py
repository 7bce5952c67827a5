"""A project's profile config drives extraction (slots, strict, validate) and event tags."""

from __future__ import annotations

from typing import Any

from tests.integration.memory.conftest import memory_responder
from tests.llm_server import ScriptedLLM
from tests.support import Api, ProjectHandle

CONFIG_FIELDS = """
  slots { topic description subTopics { name description } }
  strict validateEntries eventTags { name description } language
"""
GET = f"{{ profileConfig {{ {CONFIG_FIELDS} }} }}"
SET = f"""
mutation($input: ProfileConfigInput!) {{
  setProfileConfig(input: $input) {{
    __typename
    ... on SetProfileConfigPayload {{ config {{ {CONFIG_FIELDS} }} }}
    ... on InvalidInput {{ code field message }}
  }}
}}
"""
SETUP_USER = """
mutation {
  createUser(input: {userId: "alice"}) { __typename }
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I am a chemistry teacher and I love jazz."}
  ]}}}) { __typename }
}
"""
FLUSH = """
mutation {
  flushBuffer(input: {userId: "alice", wait: true}) {
    ... on FlushBufferPayload { flush { status error } }
  }
}
"""
MEMORY = """
{ user(userId: "alice") {
    profile { topic subTopic content }
    events(first: 1) { nodes { tags { tag value } } }
} }
"""
CUSTOM = {
    "slots": [
        {
            "topic": "work",
            "description": "Professional life",
            "subTopics": [{"name": "title", "description": "job title"}],
        }
    ],
    "strict": True,
    "eventTags": [{"name": "mood", "description": "how the user feels"}],
    "language": "ZH",
}


async def _set(api: Api, config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await api.ok(SET, input=config))["setProfileConfig"]
    return result


async def test_default_config(project: ProjectHandle) -> None:
    config = (await project.api.ok(GET))["profileConfig"]
    assert [s["topic"] for s in config["slots"]][:3] == ["basic_info", "contact_info", "education"]
    assert len(config["slots"]) == 8
    assert (
        config["strict"],
        config["validateEntries"],
        config["eventTags"],
        config["language"],
    ) == (
        False,
        False,
        [],
        None,
    )


async def test_set_and_read_back(project: ProjectHandle) -> None:
    result = await _set(project.api, CUSTOM)
    assert result["__typename"] == "SetProfileConfigPayload"
    config = (await project.api.ok(GET))["profileConfig"]
    assert config == result["config"]
    assert config["slots"] == [
        {
            "topic": "work",
            "description": "Professional life",
            "subTopics": [{"name": "title", "description": "job title"}],
        }
    ]
    assert (config["strict"], config["language"]) == (True, "ZH")
    # Setting again with fewer fields resets the rest to defaults.
    reset = await _set(project.api, {"strict": True})
    assert len(reset["config"]["slots"]) == 8
    assert reset["config"]["eventTags"] == []


async def test_invalid_config_names_the_problem(project: ProjectHandle) -> None:
    empty_topic = await _set(project.api, {"slots": [{"topic": ""}]})
    assert empty_topic["__typename"] == "InvalidInput"
    assert empty_topic["field"] == "input.slots[0].topic"
    twice = await _set(project.api, {"slots": [{"topic": "work"}, {"topic": "work"}]})
    assert twice["__typename"] == "InvalidInput"
    assert "work" in twice["message"]
    assert "twice" in twice["message"]
    tags = await _set(project.api, {"eventTags": [{"name": "a"}, {"name": "a"}]})
    assert tags["__typename"] == "InvalidInput"
    # Nothing was stored by the failed attempts.
    assert len((await project.api.ok(GET))["profileConfig"]["slots"]) == 8


async def test_root_has_no_profile_config(root: Api) -> None:
    response = await root.run(GET)
    assert response.error_codes() == ["FORBIDDEN"]


async def test_strict_slots_and_event_tags_shape_the_flush(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    await _set(project.api, {**CUSTOM, "language": "EN"})
    llm.responder = memory_responder(
        facts=[
            {"topic": "work", "sub_topic": "title", "content": "chemistry teacher"},
            {"topic": "interest", "sub_topic": "music", "content": "jazz"},  # not a slot
        ],
        tags=[{"tag": "mood", "value": "happy"}, {"tag": "unknown", "value": "x"}],
    )
    await project.api.ok(SETUP_USER)
    assert (await project.api.ok(FLUSH))["flushBuffer"]["flush"] == {
        "status": "DONE",
        "error": None,
    }

    extract_prompt = llm.requests[1]["body"]["messages"][0]["content"]
    assert "work: Professional life [title (job title)]" in extract_prompt
    assert llm.purposes() == ["summarize", "extract", "tag_event"]
    memory = (await project.api.ok(MEMORY))["user"]
    assert memory["profile"] == [
        {"topic": "work", "subTopic": "title", "content": "chemistry teacher"}
    ]
    assert memory["events"]["nodes"][0]["tags"] == [{"tag": "mood", "value": "happy"}]


async def test_validate_mode_lets_the_llm_refuse_new_facts(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    await _set(project.api, {"validateEntries": True})
    llm.responder = memory_responder(
        facts=[
            {"topic": "work", "sub_topic": "title", "content": "chemistry teacher"},
            {"topic": "interest", "sub_topic": "music", "content": "jazz"},
        ],
        decisions=[
            {"index": 0, "action": "add", "content": "chemistry teacher"},
            {"index": 1, "action": "abort"},
        ],
    )
    await project.api.ok(SETUP_USER)
    assert (await project.api.ok(FLUSH))["flushBuffer"]["flush"]["status"] == "DONE"
    assert llm.purposes() == ["summarize", "extract", "merge"]
    # In validate mode the merge prompt carries the slots to judge new facts against.
    assert "- work [company, title" in llm.requests[2]["body"]["messages"][0]["content"]
    profile = (await project.api.ok(MEMORY))["user"]["profile"]
    assert profile == [{"topic": "work", "subTopic": "title", "content": "chemistry teacher"}]


async def test_project_language_chooses_the_prompts(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    await _set(project.api, {"language": "ZH"})
    llm.responder = memory_responder()
    await project.api.ok(SETUP_USER)
    await project.api.ok(FLUSH)
    assert "用户" in llm.requests[0]["body"]["messages"][0]["content"]
