from __future__ import annotations

from tests.support import ProjectHandle

SETUP = """
mutation {
  createUser(input: {userId: "alice"}) { __typename }
  a: addProfileEntry(
    input: {userId: "alice", topic: "work", subTopic: "title", content: "teacher"}
  ) { __typename }
  b: addProfileEntry(
    input: {userId: "alice", topic: "interest", subTopic: "music", content: "jazz"}
  ) { __typename }
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I adopted a cat"}
  ]}}}) { __typename }
}
"""
CONTEXT = """
query($max: Int!, $buffer: Boolean!, $only: [String!]) {
  user(userId: "alice") {
    context(maxTokens: $max, includeBuffer: $buffer, onlyTopics: $only) {
      text tokens profileEntries events
    }
  }
}
"""


async def test_context_packs_profile_and_buffer(project: ProjectHandle) -> None:
    await project.api.ok(SETUP)
    data = await project.api.ok(CONTEXT, max=500, buffer=True, only=None)
    context = data["user"]["context"]
    assert "- work::title: teacher" in context["text"]
    assert "- interest::music: jazz" in context["text"]
    assert "I adopted a cat" in context["text"]
    assert 0 < context["tokens"] <= 500
    assert (context["profileEntries"], context["events"]) == (2, 0)

    only_work = (await project.api.ok(CONTEXT, max=500, buffer=False, only=["work"]))["user"]
    assert "jazz" not in only_work["context"]["text"]
    assert "cat" not in only_work["context"]["text"]


async def test_bad_budget_is_bad_user_input(project: ProjectHandle) -> None:
    await project.api.ok(SETUP)
    response = await project.api.run(CONTEXT, max=0, buffer=False, only=None)
    assert response.error_codes() == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "maxTokens"
