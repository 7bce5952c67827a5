"""User mistakes anywhere in the CLI end in one plain message and a non-zero exit, never a
traceback: bad arguments, files, URLs, user ids, projects and databases."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.e2e.test_cli import COMMAND, _env
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

DOWN = "http://127.0.0.1:9"  # nothing listens on port 9

# (arguments, exit code, what the message says); {url} {key} {dir} are filled in.
OFFLINE = [
    (("import-chats", "{dir}/missing.jsonl", "--url", DOWN, "--key", "k"), 2, "cannot read"),
    (("import-chats", "{dir}", "--url", DOWN, "--key", "k"), 2, "cannot read"),
    (("import-chats", "{dir}/binary.jsonl", "--url", DOWN, "--key", "k"), 2, "cannot read"),
    (("users", "--url", "ftp://example.org", "--key", "k"), 2, "must start with http"),
    (("users", "--url", "http://[::1", "--key", "k"), 2, "not a valid URL"),
    (("users", "--url", "http://127.0.0.1:port", "--key", "k"), 2, "not a valid URL"),
    (("users", "--url", "http://", "--key", "k"), 2, "names no host"),
    (("users", "--url", DOWN, "--key", "k"), 1, "could not reach"),
    (("users", "--url", DOWN), 2, "an API key is needed"),
    (("events", "alice", "--first", "many", "--key", "k"), 2, "invalid int value"),
    (("no-such-command",), 2, "invalid choice"),
    (("migrate", "--config", "{dir}/missing.yaml"), 2, "config file not found"),
]
DATABASES = [
    ("sqlite+aiosqlite:///{dir}/no/such/dir/x.db", "unable to open database file"),
    ("sqlite+aiosqlite:///{dir}/empty.db", "run `powermemo-gql migrate` first"),
    ("postgresql+asyncpg://postgres@127.0.0.1:9/x", "Connect call failed"),
]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_plain(result: subprocess.CompletedProcess[str], code: int, expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert expected in output
    assert "Traceback" not in output
    assert "Exception ignored" not in output


@pytest.mark.once  # no database or server is reached
@pytest.mark.parametrize(("args", "code", "expected"), OFFLINE)
def test_offline_mistakes_are_one_plain_message(
    args: tuple[str, ...], code: int, expected: str, tmp_path: Path
) -> None:
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    result = _cli(*(a.format(dir=tmp_path) for a in args))
    _assert_plain(result, code, expected)


@pytest.mark.once  # each case names its own database URL, whatever the suite runs on
@pytest.mark.parametrize("command", ["migrate", "projects", "api-keys acme", "create-project x"])
@pytest.mark.parametrize(("url", "expected"), DATABASES)
def test_database_commands_name_the_trouble(
    command: str, url: str, expected: str, tmp_path: Path
) -> None:
    if command == "migrate" and "empty.db" in url:
        pytest.skip("migrate creates the tables")
    env = _env(POWERMEMO_DATABASE_URL=url.format(dir=tmp_path))
    result = _cli(*command.split(), env=env)
    _assert_plain(result, 1, expected)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, background_flushes=False)


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> ProjectHandle:
    project = await create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "mistakes")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


def test_mistakes_the_server_finds_are_one_plain_message(
    live: LiveServer, tenant: ProjectHandle, database_url: str
) -> None:
    remote = ("--url", live.http_url, "--key", tenant.api_key)
    on_database = _env(POWERMEMO_DATABASE_URL=database_url)
    cases = [
        (("profile", "nobody", *remote), None, 1, "NOT_FOUND"),
        (("profile", "x" * 300, *remote), None, 1, ""),
        (("delete-user", "nobody", *remote), None, 1, "NOT_FOUND"),
        (("create-user", "alice", *remote), None, 1, "ALREADY_EXISTS"),
        (("create-user", "bob", "--data", "{nope", *remote), None, 2, "--data is not JSON"),
        (("events", "alice", "--first", "1000", *remote), None, 1, ""),
        (("context", "alice", "--max-tokens", "-5", *remote), None, 1, ""),
        (("users", "--url", live.http_url, "--key", "pm_wrong"), None, 1, "UNAUTHENTICATED"),
        (("api-keys", "no-such-project"), on_database, 1, "not found"),
        (("create-api-key", "no-such-project"), on_database, 1, "not found"),
        (("revoke-api-key", "not-a-key-id"), on_database, 1, "not found"),
    ]
    for args, env, code, expected in cases:
        _assert_plain(_cli(*args, env=env), code, expected)
