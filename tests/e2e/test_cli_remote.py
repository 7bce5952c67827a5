"""The operator and client commands of `powermemo-gql`, against a running server."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.e2e.test_cli import COMMAND, _env
from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, live_server
from tests.llm_server import ScriptedLLM, running_llm
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
def settings(database_url: str, llm: ScriptedLLM) -> Settings:
    return make_settings(database_url, llm_base_url=llm.base_url, background_flushes=False)


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> ProjectHandle:
    project = await create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "cli")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chat_import_profile_and_context(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = memory_responder()
    remote = ("--url", live.http_url, "--key", tenant.api_key)
    chat = _cli("chat", "alice", "I teach chemistry.", "--reply", "Nice!", *remote)
    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "chat stored as blob" in chat.stdout

    chats = tmp_path / "chats.jsonl"
    said = "2024-03-01T09:30:00+00:00"
    chats.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "user": "alice",
                        "messages": [
                            {"role": "user", "content": "I live in Lyon.", "created_at": said}
                        ],
                    }
                ),
                json.dumps({"user": "ghost", "messages": [{"role": "user", "content": "hi"}]}),
                "not json",
            ]
        )
    )
    imported = _cli("import-chats", str(chats), "--flush", *remote)
    assert imported.returncode == 1  # two bad lines, reported
    assert "imported 1 of 3 chats" in imported.stdout
    assert "user 'ghost' does not exist (line(s) 2)" in imported.stdout
    assert "line 3: not valid JSON" in imported.stdout

    profile = _cli("profile", "alice", *remote)
    assert profile.returncode == 0, profile.stderr
    assert "chemistry teacher" in profile.stdout
    assert "Lyon" in profile.stdout

    context = _cli("context", "alice", "--max-tokens", "200", *remote)
    assert context.returncode == 0
    assert context.stdout.startswith("<memory>")
    turn = _cli("context", "alice", "--query", "Where does she live?", *remote)
    assert turn.returncode == 0, turn.stdout + turn.stderr
    assert "Lyon" in turn.stdout

    found = _cli("search", "alice", "chemistry", *remote)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "work::title: chemistry teacher" in found.stdout
    assert "keyword search" in found.stdout  # no embedder on this server, and it says so
    empty = _cli("search", "alice", " ", *remote)
    assert empty.returncode == 1
    assert "query" in empty.stdout

    # Everything is flushed already: the command says so rather than guessing.
    flushed = _cli("flush", "alice", *remote)
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stdout.strip() == "nothing to flush"

    bad_key = _cli("profile", "alice", "--url", live.http_url, "--key", "pm_wrong")
    assert bad_key.returncode == 1
    assert "UNAUTHENTICATED" in bad_key.stdout


async def test_imported_messages_keep_when_they_were_said(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path
) -> None:
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        json.dumps(
            {
                "user": "alice",
                "messages": [
                    {
                        "role": "user",
                        "content": "Old news.",
                        "created_at": "2020-01-02T03:04:05+00:00",
                    }
                ],
            }
        )
    )
    assert (
        _cli("import-chats", str(chats), "--url", live.http_url, "--key", tenant.api_key).returncode
        == 0
    )
    data = await tenant.api.ok(
        '{ user(userId: "alice") { blobs { nodes {'
        " createdAt ... on ChatBlob { messages { createdAt } } } } } }"
    )
    [blob] = data["user"]["blobs"]["nodes"]
    assert blob["messages"][0]["createdAt"].startswith("2020-01-02T03:04:05")
    assert not blob["createdAt"].startswith("2020")  # ingestion time is now


def test_imported_history_yields_events_dated_as_said(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = memory_responder(summary="- Lives in Lyon [said 2020-01-02]")
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        "\n".join(
            json.dumps(
                {"user": "alice", "messages": [{"role": "user", "content": text, "created_at": at}]}
            )
            for text, at in (
                ("I moved to Lyon.", "2020-01-02T03:04:05+00:00"),
                ("I teach chemistry.", "2020-01-05T10:00:00+00:00"),
            )
        )
    )
    remote = ("--url", live.http_url, "--key", tenant.api_key)
    imported = _cli("import-chats", str(chats), "--flush", *remote)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    events = _cli("events", "alice", *remote)
    assert events.returncode == 0, events.stderr
    assert "2020-01-02 .. 2020-01-05" in events.stdout
    assert "Lives in Lyon" in events.stdout
    profile = _cli("profile", "alice", *remote)
    assert "2020-01-05T10:00:00+00:00" in profile.stdout  # last mentioned


async def test_importing_a_file_again_stores_nothing_twice(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path
) -> None:
    await tenant.api.ok('mutation { createUser(input: {userId: "bob"}) { __typename } }')

    def line(user: str, said: str) -> str:
        return json.dumps({"user": user, "messages": [{"role": "user", "content": said}]})

    chats = tmp_path / "chats.jsonl"
    # The same chat for two users, and one line twice: each is a chat of its own.
    chats.write_text(
        "\n".join(
            [line("alice", "Hi."), line("bob", "Hi."), line("alice", "Ok."), line("alice", "Ok.")]
        )
    )
    remote = ("--url", live.http_url, "--key", tenant.api_key)

    first = _cli("import-chats", str(chats), *remote)
    again = _cli("import-chats", str(chats), *remote)
    chats.write_text(chats.read_text() + "\n" + line("alice", "New."))
    grown = _cli("import-chats", str(chats), *remote)

    assert [first.returncode, again.returncode, grown.returncode] == [0, 0, 0], again.stdout
    stored = {}
    for user in ("alice", "bob"):
        data = await tenant.api.ok(
            "query($id: ID!) { user(userId: $id) { blobs { nodes {"
            " ... on ChatBlob { messages { content } } } } } }",
            id=user,
        )
        stored[user] = [b["messages"][0]["content"] for b in data["user"]["blobs"]["nodes"]]
    assert stored == {"alice": ["Hi.", "Ok.", "Ok.", "New."], "bob": ["Hi."]}


def test_operator_commands(live: LiveServer, tenant: ProjectHandle, database_url: str) -> None:
    env = _env(POWERMEMO_DATABASE_URL=database_url)
    projects = _cli("projects", env=env)
    assert projects.returncode == 0, projects.stderr
    assert "cli" in projects.stdout
    keys = _cli("api-keys", "cli", env=env)
    assert keys.returncode == 0
    key_id = next(
        line.split("│")[1].strip() for line in keys.stdout.splitlines() if "tests" in line
    )
    revoked = _cli("revoke-api-key", key_id, env=env)
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout
    # Without Redis nobody tells the server: it finds out at its next check of the keys it
    # remembers (every 2 s), so allow a few tries.
    for _ in range(10):
        after = _cli("profile", "alice", "--url", live.http_url, "--key", tenant.api_key)
        if "UNAUTHENTICATED" in after.stdout:
            break
        time.sleep(1)
    assert "UNAUTHENTICATED" in after.stdout
    missing = _cli("api-keys", "nope", env=env)
    assert missing.returncode == 1


def test_user_commands(live: LiveServer, tenant: ProjectHandle) -> None:
    remote = ("--url", live.http_url, "--key", tenant.api_key)
    created = _cli("create-user", "bob", "--data", '{"plan": "pro"}', *remote)
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.strip() == "bob"
    generated = _cli("create-user", *remote)
    assert generated.returncode == 0
    listed = _cli("users", *remote)
    assert listed.returncode == 0, listed.stderr
    assert "bob" in listed.stdout
    assert '{"plan": "pro"}' in listed.stdout
    assert generated.stdout.strip() in listed.stdout
    assert "bob" not in _cli("users", "--search", "alic", *remote).stdout
    again = _cli("create-user", "bob", *remote)
    assert again.returncode == 1
    assert "ALREADY_EXISTS" in again.stdout
    bad = _cli("create-user", "carol", "--data", "[1]", *remote)
    assert (bad.returncode, "must be a JSON object" in bad.stdout) == (2, True)
    deleted = _cli("delete-user", "bob", *remote)
    assert deleted.returncode == 0
    assert "bob" not in _cli("users", *remote).stdout
    missing = _cli("delete-user", "bob", *remote)
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stdout


def test_remote_commands_find_the_server_and_say_where_they_looked(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path
) -> None:
    port = live.http_url.rsplit(":", 1)[1]
    config = tmp_path / "config.yaml"
    config.write_text(f"port: {port}\n")
    # No --url: the configured port, with --config before or after the subcommand.
    for args in (
        ("--config", str(config), "users", "--key", tenant.api_key),
        ("users", "--config", str(config), "--key", tenant.api_key),
    ):
        found = _cli(*args)
        assert found.returncode == 0, found.stdout + found.stderr
        assert "alice" in found.stdout
    down = _cli("users", "--key", tenant.api_key, "--url", "http://127.0.0.1:9")
    assert down.returncode == 1
    assert "could not reach http://127.0.0.1:9" in down.stdout
    no_scheme = _cli("users", "--key", tenant.api_key, "--url", "127.0.0.1:8019")
    assert no_scheme.returncode == 2
    assert "must start with http:// or https://" in no_scheme.stdout
    for result in (down, no_scheme):
        assert "Traceback" not in result.stdout + result.stderr
