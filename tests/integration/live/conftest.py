from __future__ import annotations

from collections.abc import Iterator

import pytest

from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.live import LiveServer, live_server
from tests.llm_server import ScriptedLLM, running_llm
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
def live_settings(database_url: str, llm: ScriptedLLM) -> Settings:
    return make_settings(
        database_url, llm_base_url=llm.base_url, llm_max_retries=0, background_flushes=False
    )


@pytest.fixture
def live(live_settings: Settings) -> Iterator[LiveServer]:
    with live_server(live_settings) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> ProjectHandle:
    project = await create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "live")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project
