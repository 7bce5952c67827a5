"""users -> profile: one query for the profiles of a page of users, however many users."""

from __future__ import annotations

from starlette.applications import Starlette

from tests.integration.blobs.test_dataloaders import statements_of, touching
from tests.support import Api, ProjectHandle

USERS_WITH_PROFILES = """
query($topk: Int) {
  users(first: 10) { nodes { id: userId profile(topk: $topk) { topic subTopic content } } }
}
"""


async def _user_with_profile(api: Api, user_id: str) -> None:
    await api.ok(
        "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }", id=user_id
    )
    for sub in ("a", "b", "c"):
        await api.ok(
            "mutation($u: ID!, $s: String!, $c: String!) { addProfileEntry(input: "
            '{userId: $u, topic: "t", subTopic: $s, content: $c}) { __typename } }',
            u=user_id,
            s=sub,
            c=f"{user_id}-{sub}",
        )


async def test_profiles_of_many_users_take_one_query(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    for user_id in ("u0", "u1"):
        await _user_with_profile(api, user_id)
    await api.ok(USERS_WITH_PROFILES, topk=None)  # warm up
    with_two = await statements_of(app, api, USERS_WITH_PROFILES, topk=None)
    for user_id in ("u2", "u3", "u4", "u5"):
        await _user_with_profile(api, user_id)
    with_six = await statements_of(app, api, USERS_WITH_PROFILES, topk=None)
    data = await api.ok(USERS_WITH_PROFILES, topk=2)

    assert len(with_six) == len(with_two)
    assert len(touching(with_six, "profile_entries")) == 1
    nodes = data["users"]["nodes"]
    assert [n["id"] for n in nodes] == ["u0", "u1", "u2", "u3", "u4", "u5"]
    for node in nodes:  # topk=2 keeps each user's two most recent entries
        assert [e["content"] for e in node["profile"]] == [f"{node['id']}-b", f"{node['id']}-c"]


ONE_USER = """
query($id: ID!) {
  user(userId: $id) {
    userId
    profile { topic subTopic content }
    some: profile(topics: ["t"], topk: 1) { subTopic }
  }
}
"""


async def test_a_user_and_its_whole_profile_are_one_statement(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    await _user_with_profile(api, "u0")
    await api.ok('mutation { createUser(input: {userId: "empty"}) { __typename } }')
    plain = '{ user(userId: "u0") { profile { subTopic content } } }'
    await api.ok(plain)  # warm up

    statements = await statements_of(app, api, plain)
    assert len(statements) == 1, statements  # the key is cached
    assert touching(statements, "users") == touching(statements, "profile_entries")

    user = (await api.ok(ONE_USER, id="u0"))["user"]
    assert [(e["subTopic"], e["content"]) for e in user["profile"]] == [
        ("a", "u0-a"),
        ("b", "u0-b"),
        ("c", "u0-c"),
    ]
    assert user["some"] == [{"subTopic": "c"}]  # with arguments: through the loader
    empty = (await api.ok(ONE_USER, id="empty"))["user"]
    assert empty == {"userId": "empty", "profile": [], "some": []}
    assert (await api.ok(ONE_USER, id="nobody"))["user"] is None
    in_fragment = '{ user(userId: "u0") { ... on User { profile { subTopic } } } }'
    fragment = (await api.ok(in_fragment))["user"]["profile"]
    assert [e["subTopic"] for e in fragment] == ["a", "b", "c"]
