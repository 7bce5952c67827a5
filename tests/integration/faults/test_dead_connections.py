"""Without pre-ping, a pooled connection can be dead without anyone knowing (the server or a
middlebox dropped it silently) until a statement is sent on it. The connection is then
invalidated; a query, which changes nothing, runs once more on a fresh one, and a mutation
fails with a code (it may or may not have happened: the client decides to retry)."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.integration.faults.common import running_app, target_of, through
from tests.proxy import FreezableProxy
from tests.support import ROOT_TOKEN, Api, create_project

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")

READ = '{ user(userId: "alice") { userId profile { content } } }'
CREATE = "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }"


async def test_a_query_on_a_silently_dead_connection_runs_again_on_a_fresh_one(
    database_url: str,
) -> None:
    async with (
        FreezableProxy(*target_of(database_url, 5432)) as proxy,
        running_app(through(database_url, proxy.port), database_pool_size=1) as app,
    ):
        project = await create_project(app, Api(app, ROOT_TOKEN), "dead")
        await project.api.ok(CREATE, id="alice")
        assert (await project.api.ok(READ))["user"]["userId"] == "alice"

        proxy.cut_open_connections()  # every pooled connection is now dead, unseen
        read = await project.api.post({"query": READ})

        proxy.cut_open_connections()
        created = await project.api.post({"query": CREATE, "variables": {"id": "bob"}})
        after = await project.api.post({"query": CREATE, "variables": {"id": "carol"}})

    assert read.status_code == 200
    assert read.json() == {"data": {"user": {"userId": "alice", "profile": []}}}
    # A write is not run twice behind the client's back: it gets a code, and the next
    # request finds a fresh connection.
    assert created.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert after.json() == {"data": {"createUser": {"__typename": "CreateUserPayload"}}}
