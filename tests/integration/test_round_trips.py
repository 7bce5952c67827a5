"""What a request costs in PostgreSQL round trips, counted on the wire by a proxy between
the app and the server (each burst the app sends and waits on is one): insertBlob one (its
one statement, autocommitted), the profile query one (the user with its entries, on an
autocommitting connection). The API key is cached and the statements prepared, as on
any request after the first few."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.integration.faults.common import running_app, target_of, through
from tests.proxy import FreezableProxy
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")

INSERT = """
mutation {
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I moved to Lisbon"}, {role: ASSISTANT, content: "Nice!"}
  ]}}}) { ... on InsertBlobPayload { replayed } }
}
"""
PROFILE = '{ user(userId: "alice") { profile { topic subTopic content } } }'
ADD_ENTRY = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "t", subTopic: $sub, content: "likes tea"}) {
    __typename
  }
}
"""


async def _round_trips(proxy: FreezableProxy, project: ProjectHandle, document: str) -> int:
    for _ in range(3):  # the key cached, the statements prepared on every pooled connection
        await project.api.ok(document)
    before = proxy.round_trips
    answer = await project.api.post({"query": document})
    assert "errors" not in answer.json(), answer.json()
    return proxy.round_trips - before


async def test_insert_blob_and_the_profile_query_cost_few_round_trips(
    database_url: str,
) -> None:
    async with (
        FreezableProxy(*target_of(database_url, 5432)) as proxy,
        # One pooled connection: each request meets a connection that prepared its statements.
        running_app(
            through(database_url, proxy.port), database_pool_size=1, background_flushes=False
        ) as app,
    ):
        project = await create_project(app, Api(app, ROOT_TOKEN), "wire")
        await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
        for n in range(10):
            await project.api.ok(ADD_ENTRY, sub=f"s{n}")

        inserting = await _round_trips(proxy, project, INSERT)
        reading = await _round_trips(proxy, project, PROFILE)

    # The insert is one autocommitted statement: no BEGIN / COMMIT (was 3, and 5 before).
    assert inserting == 1, inserting
    # The user and its whole profile are one statement (was 2: the user, then its entries).
    assert reading == 1, reading
