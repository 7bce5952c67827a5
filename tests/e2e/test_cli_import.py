"""`powermemo-gql import-chats` against a running server: users, limits, mistakes, volume."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from powermemo_gql.core import ratelimit
from powermemo_gql.core.db import create_engine
from powermemo_gql.projects.revocation import CACHE_RECHECK_SECONDS
from powermemo_gql.settings import Settings
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.e2e.test_cli import COMMAND, _env
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=900,  # the 10,000-line import on a loaded machine
        check=False,
    )


def _line(user: str, said: str, **extra: object) -> str:
    return json.dumps({"user": user, "messages": [{"role": "user", "content": said}], **extra})


async def _blob_count(database_url: str) -> int:
    engine = create_engine(make_settings(database_url))
    try:
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM blobs"))).scalar_one()
            return int(count)
    finally:
        await engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, background_flushes=False)


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> ProjectHandle:
    project = await create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "import")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


def _remote(live: LiveServer, tenant: ProjectHandle) -> tuple[str, ...]:
    return ("--url", live.http_url, "--key", tenant.api_key)


async def test_missing_users_are_named_with_the_flag_and_created_with_it(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path, database_url: str
) -> None:
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        "\n".join([_line("alice", "Hi."), _line("ghost", "Boo."), _line("ghost", "Boo again.")])
    )
    without = _cli("import-chats", str(chats), *_remote(live, tenant))
    assert without.returncode == 1
    assert "imported 1 of 3 chats" in without.stdout
    assert "user 'ghost' does not exist (line(s) 2, 3)" in without.stdout
    assert "--create-users" in without.stdout

    created = _cli("import-chats", str(chats), "--create-users", *_remote(live, tenant))
    assert created.returncode == 0, created.stdout + created.stderr
    assert "created 1 user(s)" in created.stdout
    assert "imported 3 of 3 chats (2 new, 1 already there)" in created.stdout
    assert await _blob_count(database_url) == 3


def test_malformed_lines_are_named_by_their_line_number(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path
) -> None:
    chats = tmp_path / "chats.jsonl"
    lines = [
        _line("alice", "First."),  # 1
        "",  # 2: blank, still counted
        "not json",  # 3
        "[1, 2]",  # 4
        json.dumps({"user": "alice"}),  # 5
        json.dumps({"user": 7, "messages": [{"role": "user", "content": "x"}]}),  # 6
        json.dumps({"user": "alice", "messages": [{"role": "robot", "content": "x"}]}),  # 7
        json.dumps(
            {
                "user": "alice",
                "messages": [{"role": "user", "content": "x", "created_at": "yesterday"}],
            }
        ),  # 8
        json.dumps({"user": "alice", "messages": "hello"}),  # 9
        "   ",  # 10: blank
        _line("alice", "Last."),  # 11
    ]
    chats.write_text("\n".join(lines) + "\n")
    result = _cli("import-chats", str(chats), *_remote(live, tenant))
    assert result.returncode == 1
    out = result.stdout
    assert "imported 2 of 9 chats" in out
    assert "line 3: not valid JSON (Expecting value at column 1)" in out
    assert "line 4: expected a JSON object" in out
    assert 'line 5: missing "messages"' in out
    assert 'line 6: "user" must be a non-empty string' in out
    assert "line 7: messages[0]: role is 'user' or 'assistant'" in out
    assert "line 8: messages[0].created_at is not an ISO 8601 time: 'yesterday'" in out
    assert 'line 9: "messages" must be a non-empty list' in out
    assert "line 1:" not in out
    assert "line 11:" not in out
    assert "Traceback" not in out + result.stderr


def test_a_tiny_rate_limit_slows_the_import_without_losing_a_chat(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's own limiter, with a two-second window so that its Retry-After is short.
    monkeypatch.setattr(ratelimit, "WINDOW_SECONDS", 2)
    settings = make_settings(database_url, background_flushes=False, rate_limit_per_minute=3)
    chats = tmp_path / "chats.jsonl"
    chats.write_text(
        "\n".join(_line(f"user-{i % 3}", f"message {i}") for i in range(30)),
    )
    with live_server(settings) as live:
        tenant = asyncio.run(
            create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "limited")
        )
        result = _cli(
            "import-chats",
            str(chats),
            "--create-users",
            "--batch-size",
            "4",
            "--concurrency",
            "2",
            *_remote(live, tenant),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rate limited: waiting" in result.stdout
    assert "imported 30 of 30 chats (30 new, 0 already there)" in result.stdout
    assert asyncio.run(_blob_count(database_url)) == 30


def _wait_until_refused(live: LiveServer, api_key: str) -> None:
    deadline = time.monotonic() + 10 * CACHE_RECHECK_SECONDS
    while time.monotonic() < deadline:
        answer = httpx.post(
            live.http_url + "/graphql",
            json={"query": "{ users(first: 1) { totalCount } }"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=30,
        ).json()
        if any(
            e.get("extensions", {}).get("code") == "UNAUTHENTICATED"
            for e in answer.get("errors", [])
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the server still accepts the revoked key")


def test_fatal_errors_stop_the_import_with_one_message(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path, database_url: str
) -> None:
    chats = tmp_path / "chats.jsonl"
    chats.write_text("\n".join(_line("alice", f"m{i}") for i in range(60)))
    bad_key = _cli("import-chats", str(chats), "--url", live.http_url, "--key", "pm_wrong")
    down = _cli("import-chats", str(chats), "--url", "http://127.0.0.1:9", "--key", "pm_x")

    # The operator's commands share the servers' configuration: their database and broker,
    # through which a revocation reaches every server's key cache at once.
    broker = {"POWERMEMO_REDIS_URL": TEST_REDIS_URL} if TEST_REDIS_URL else {}
    env = _env(POWERMEMO_DATABASE_URL=database_url, **broker)
    keys = _cli("api-keys", "import", env=env)
    key_id = next(
        line.split("│")[1].strip() for line in keys.stdout.splitlines() if "tests" in line
    )
    assert _cli("revoke-api-key", key_id, env=env).returncode == 0
    if not TEST_REDIS_URL:
        # Without a broker nobody tells the server: its key cache finds the revocation on its
        # next recheck of the database (every CACHE_RECHECK_SECONDS), as documented.
        _wait_until_refused(live, tenant.api_key)
    revoked = _cli("import-chats", str(chats), *_remote(live, tenant))

    for result, reason in (
        (bad_key, "the server refused the API key (UNAUTHENTICATED"),
        (down, "could not reach http://127.0.0.1:9"),
        (revoked, "the server refused the API key (UNAUTHENTICATED"),
    ):
        assert result.returncode == 1
        assert result.stdout.count("import stopped:") == 1, result.stdout
        assert reason in result.stdout
        assert "line " not in result.stdout  # no error per line: it stopped at once
        assert "Traceback" not in result.stdout + result.stderr


# 20,000 insertBlob calls (three minutes on a busy machine): run once in CI. The same path
# (batches, idempotency keys, a re-run storing nothing) runs on both databases in the smaller
# tests of this file and of test_cli_remote.py.
@pytest.mark.once
async def test_ten_thousand_lines_are_imported_once(
    live: LiveServer, tenant: ProjectHandle, tmp_path: Path, database_url: str
) -> None:
    chats = tmp_path / "history.jsonl"
    with chats.open("w") as out:
        for i in range(10_000):
            said = f"2024-01-{1 + i % 28:02d}T10:00:00+00:00"
            record = {
                "user": f"person-{i % 40}",
                "messages": [
                    {"role": "user", "content": f"note {i}", "created_at": said},
                    {"role": "assistant", "content": "Noted."},
                ],
            }
            out.write(json.dumps(record) + "\n")
    first = _cli("import-chats", str(chats), "--create-users", *_remote(live, tenant))
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "imported 10000 of 10000 chats (10000 new, 0 already there)" in first.stdout
    assert await _blob_count(database_url) == 10_000

    again = _cli("import-chats", str(chats), "--create-users", *_remote(live, tenant))
    assert again.returncode == 0, again.stdout[-2000:]
    assert "created 0 user(s)" in again.stdout
    assert "imported 10000 of 10000 chats (0 new, 10000 already there)" in again.stdout
    assert await _blob_count(database_url) == 10_000
