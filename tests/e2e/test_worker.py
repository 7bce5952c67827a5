"""`powermemo-gql worker`: flushes run in their own process, beside API instances that
don't flush by themselves."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from powermemo_gql.core.db import create_engine
from powermemo_gql.profiles.models import ProfileEntry
from tests.conftest import make_settings
from tests.e2e.test_cli import COMMAND, Server, _env
from tests.e2e.test_flush_crash import MEMORY, _graphql, _wait_for
from tests.integration.memory.conftest import memory_responder
from tests.integration.memory.test_flush import CREATE_USER, INSERT_CHAT
from tests.integration.recall.conftest import ADD_ENTRY
from tests.llm_server import ScriptedLLM, running_llm
from tests.support import CREATE_KEY, CREATE_PROJECT, ROOT_TOKEN


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
def processes(database_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _flushes(server: Server, key: str) -> list[dict[str, Any]]:
    flushes: list[dict[str, Any]] = _graphql(server, key, MEMORY, id="alice")["user"]["flushes"]
    return flushes


def test_worker_flushes_what_the_api_leaves(
    database_url: str,
    tmp_path: Path,
    llm: ScriptedLLM,
    processes: list[subprocess.Popen[str]],
) -> None:
    llm.responder = memory_responder()
    env = _env(
        POWERMEMO_DATABASE_URL=database_url,
        POWERMEMO_ROOT_TOKEN=ROOT_TOKEN,
        POWERMEMO_LLM_BASE_URL=llm.base_url,
        POWERMEMO_MAX_BUFFER_TOKENS="5",
        POWERMEMO_BACKGROUND_FLUSHES="false",
    )
    api = Server(env, tmp_path)
    processes.append(api.process)
    project = _graphql(api, ROOT_TOKEN, CREATE_PROJECT, name="worker")["createProject"]
    key = _graphql(api, ROOT_TOKEN, CREATE_KEY, projectId=project["project"]["id"])
    secret: str = key["createApiKey"]["secret"]
    _graphql(api, secret, CREATE_USER, id="alice")
    _graphql(api, secret, INSERT_CHAT, userId="alice", text="Well past five tokens, this one.")

    time.sleep(1.0)  # an API instance without background flushes leaves the buffer alone
    assert _flushes(api, secret) == []
    assert llm.requests == []

    worker = subprocess.Popen(
        [COMMAND, "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(worker)

    def done() -> list[dict[str, Any]] | None:
        return [f for f in _flushes(api, secret) if f["status"] == "DONE"] or None

    [flush] = _wait_for("the worker's flush", done)
    assert (flush["trigger"], flush["itemCount"]) == ("SIZE", 1)

    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert "worker stopped" in output
    api.stop()


def test_worker_embeds_rows_the_api_left_unembedded(
    database_url: str,
    tmp_path: Path,
    llm: ScriptedLLM,
    processes: list[subprocess.Popen[str]],
) -> None:
    # An API instance without an embedder stores rows unembedded; the worker, configured with
    # one, finds them in its catch-up loop (no poke reaches it from another process).
    env = _env(
        POWERMEMO_DATABASE_URL=database_url,
        POWERMEMO_ROOT_TOKEN=ROOT_TOKEN,
        POWERMEMO_LLM_BASE_URL=llm.base_url,
        POWERMEMO_BACKGROUND_FLUSHES="false",
    )
    api = Server(env, tmp_path)
    processes.append(api.process)
    project = _graphql(api, ROOT_TOKEN, CREATE_PROJECT, name="worker")["createProject"]
    key = _graphql(api, ROOT_TOKEN, CREATE_KEY, projectId=project["project"]["id"])
    secret: str = key["createApiKey"]["secret"]
    _graphql(api, secret, CREATE_USER, id="alice")
    _graphql(api, secret, ADD_ENTRY, user="alice", topic="interest", sub="food", content="Vegan")
    assert llm.embedding_requests == []

    worker = subprocess.Popen(
        [COMMAND, "worker"],
        env={
            **env,
            "POWERMEMO_EMBEDDING_PROVIDER": "openai",
            "POWERMEMO_EMBEDDING_BASE_URL": llm.base_url,
            "POWERMEMO_EMBEDDING_MODEL": "scripted-embedder",
            "POWERMEMO_EMBEDDING_CATCHUP_SECONDS": "0.2",
        },
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(worker)
    _wait_for("embedded entry", lambda: _marks(database_url) or None)
    assert _marks(database_url) == ["openai:scripted-embedder"]
    assert ["interest / food: Vegan"] in llm.embedding_inputs()

    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    api.stop()


def _marks(database_url: str) -> list[str]:
    """The models that embedded the database's profile entries (none while unembedded)."""

    async def read() -> list[str]:
        engine = create_engine(make_settings(database_url))
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    select(col(ProfileEntry.embedded_model)).where(
                        col(ProfileEntry.embedded_model).is_not(None)
                    )
                )
                return [str(row[0]) for row in found]
        finally:
            await engine.dispose()

    return asyncio.run(read())
