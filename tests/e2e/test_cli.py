"""The `powermemo-gql` command as an operator runs it: a real process, a real port."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.live.sockets import closed_with, ready
from tests.support import ROOT_TOKEN

COMMAND = str(Path(sys.executable).parent / "powermemo-gql")
REPO = Path(__file__).resolve().parents[2]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERMEMO_")}
    env.update(values)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


class Server:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [COMMAND, "serve", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server did not become healthy in 90 s")

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._lines.append(line)

    def stop(self) -> str:
        """Stop gracefully, as a process manager would; the server's whole output."""
        self.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit.
        assert self.process.wait(timeout=15) in (0, -signal.SIGTERM)
        output = self.output()
        assert "Application shutdown complete" in output, output
        return output

    def output(self) -> str:
        """What the server printed so far (all of it, once it has exited)."""
        if self.process.poll() is not None:
            self._reader.join(timeout=10)
        return "".join(self._lines)

    def graphql(self, token: str, query: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


ServerFactory = Callable[[dict[str, str]], Server]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.output()


def test_production_without_root_token_refuses_to_start(tmp_path: Path) -> None:
    result = _run("serve", env=_env(POWERMEMO_MODE="production"), cwd=tmp_path)
    assert result.returncode == 2
    assert "POWERMEMO_ROOT_TOKEN" in result.stderr


def test_bad_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    result = _run("serve", env=_env(POWERMEMO_PORT="not-a-port"), cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "port" in result.stderr


def test_development_serve_migrates_prints_root_token_and_serves_graphiql(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    # The embedded default: a SQLite file in the working directory, no Redis.
    server = server_factory(_env())
    token_file = (tmp_path / "powermemo.db.root-token").resolve()
    token = re.search(
        rf"root token stored in {re.escape(str(token_file))}:\s+(\S+)", server.output()
    )
    assert token is not None, server.output()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == token.group(1)
    graphiql = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert graphiql.status_code == 200
    assert "graphiql" in graphiql.text.lower()
    # This test's client is on loopback: the page holds the header that opens the schema.
    assert f"Bearer {token.group(1)}" in graphiql.text
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    assert server.graphql(token.group(1), "{ viewer { isRoot } }").json() == {
        "data": {"viewer": {"isRoot": True}}
    }
    server.stop()
    assert (tmp_path / "powermemo.db").is_file()

    # A restart reads the same token: GraphiQL and scripts keep working without retyping it.
    again = server_factory(_env())
    assert f"root token read from {token_file}" in again.output()
    assert again.graphql(token.group(1), "{ viewer { isRoot } }").json() == {
        "data": {"viewer": {"isRoot": True}}
    }


def test_development_token_file_open_to_others_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "powermemo.db.root-token"
    token_file.write_text("a-token-of-twenty-characters\n")
    token_file.chmod(0o644)
    result = _run("serve", env=_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "can be read by others" in result.stderr
    assert "Traceback" not in result.stderr


def test_operator_commands_issue_a_working_key(
    tmp_path: Path, database_url: str, server_factory: ServerFactory
) -> None:
    env = _env(POWERMEMO_DATABASE_URL=database_url, POWERMEMO_ROOT_TOKEN=ROOT_TOKEN)
    assert _run("migrate", env=env, cwd=tmp_path).returncode == 0
    created = _run("create-project", "cli-demo", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    duplicate = _run("create-project", "cli-demo", env=env, cwd=tmp_path)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    key = _run("create-api-key", "cli-demo", env=env, cwd=tmp_path)
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()

    server = server_factory(env | {"POWERMEMO_MIGRATE_ON_STARTUP": "false"})
    response = server.graphql(secret, "{ viewer { isRoot project { id name } } }")
    assert response.json()["data"]["viewer"] == {
        "isRoot": False,
        "project": {"id": created.stdout.strip(), "name": "cli-demo"},
    }
    assert server.graphql("pm_not-a-key", "{ viewer { isRoot } }").status_code == 401


def test_production_mode_turns_graphiql_off(tmp_path: Path, server_factory: ServerFactory) -> None:
    server = server_factory(_env(POWERMEMO_MODE="production", POWERMEMO_ROOT_TOKEN=ROOT_TOKEN))
    page = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 404
    assert server.graphql(ROOT_TOKEN, "{ viewer { isRoot } }").json() == {
        "data": {"viewer": {"isRoot": True}}
    }


def test_export_schema_matches_committed_schema(tmp_path: Path) -> None:
    result = _run("export-schema", env=_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (REPO / "schema.graphql").read_text()


def test_configuration_mistakes_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    cases = [
        (_env(POWERMEMO_ENV="production"), ("migrate",), "did you mean POWERMEMO_MODE?"),
        (_env(POWERMEMO_DATABASE_URL="mysql://root@db/m"), ("migrate",), "got mysql://"),
        (_env(), ("migrate", "--config", str(tmp_path / "missing.yaml")), "config file not found"),
    ]
    for env, args, expected in cases:
        result = _run(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


async def test_serve_caps_websocket_messages_like_request_bodies(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    limit = 64 * 1024
    env = _env(POWERMEMO_ROOT_TOKEN=ROOT_TOKEN, POWERMEMO_MAX_REQUEST_BYTES=str(limit))
    server = server_factory(env)
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    socket = await ready(ws_url, ROOT_TOKEN)
    await socket.send(" " * (limit + 1024))
    code, _ = await closed_with(socket)
    # 1009 "message too big" comes from the websocket layer, before the app reads the frame.
    assert code == 1009


async def test_serve_sends_websocket_messages_uncompressed(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    # The client offers permessage-deflate (as browsers do); change messages are small, and
    # compressing each one for each socket was a third of the fan-out's CPU.
    server = server_factory(_env(POWERMEMO_ROOT_TOKEN=ROOT_TOKEN))
    socket = await ready(server.url.replace("http://", "ws://") + "/graphql", ROOT_TOKEN)
    try:
        assert socket.request.headers.get("Sec-WebSocket-Extensions")  # offered
        assert socket.response.headers.get("Sec-WebSocket-Extensions") is None  # declined
    finally:
        await socket.close()
