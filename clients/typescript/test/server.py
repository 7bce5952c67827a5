"""A real Powermemo server for the TypeScript client's tests, run by test/server.ts.

Starts the repository's scripted loopback LLM (tests/llm_server.py, answering each pipeline
step with tests.integration.memory.conftest's memory_responder) and `powermemo-gql serve`
from the repository's .venv on a free port, with a temporary SQLite database, development
mode and a root token; makes a project and an API key with that token; prints one JSON line
{url, apiKey, rootToken}. Then it obeys commands on stdin, one per line, answering each
with a JSON line: `stop` (SIGTERM: open sockets are closed with 1012) and `start` (the same
port and database again). On EOF it stops the server and the LLM and removes the database.

Run it with the repository's Python: `.venv/bin/python clients/typescript/test/server.py`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))  # tests/ is a package of the repository, not an installed one

from tests.integration.memory.conftest import memory_responder  # noqa: E402
from tests.llm_server import running_llm  # noqa: E402

COMMAND = REPO / ".venv" / "bin" / "powermemo-gql"

CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) {
    ... on CreateProjectPayload { project { id } }
    ... on Error { code message }
  }
}"""
CREATE_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId}) {
    ... on CreateApiKeyPayload { secret }
    ... on Error { code message }
  }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`powermemo-gql serve` on one port and database, stopped and started on demand."""

    def __init__(self, workdir: Path, llm_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root_token = secrets.token_urlsafe(24)
        self.log_path = workdir / "server.log"
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("POWERMEMO_")}
        self.env.update(
            POWERMEMO_MODE="development",
            POWERMEMO_ROOT_TOKEN=self.root_token,
            POWERMEMO_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'memory.db'}",
            POWERMEMO_REDIS_URL="",
            POWERMEMO_MIGRATE_ON_STARTUP="true",
            POWERMEMO_BACKGROUND_FLUSHES="false",
            POWERMEMO_RATE_LIMIT_PER_MINUTE="0",
            POWERMEMO_LOG_LEVEL="WARNING",
            POWERMEMO_LLM_BASE_URL=llm_url,
            POWERMEMO_LLM_API_KEY="scripted",
            POWERMEMO_LLM_MAX_RETRIES="0",
            POWERMEMO_LLM_RETRY_BACKOFF_SECONDS="0",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                [str(COMMAND), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.workdir,  # no config.yaml here: the environment says everything
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def root(self, query: str, variables: dict[str, str]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.root_token}"},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    def new_api_key(self, name: str) -> str:
        project = self.root(CREATE_PROJECT, {"name": name})["createProject"]["project"]
        issued = self.root(CREATE_KEY, {"projectId": project["id"]})
        return str(issued["createApiKey"]["secret"])


def say(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="powermemo-ts-") as workdir, running_llm() as llm:
        llm.responder = memory_responder()
        server = Server(Path(workdir), llm.base_url)
        try:
            server.start()
            say(
                {
                    "url": server.url,
                    "apiKey": server.new_api_key("ts-client"),
                    "rootToken": server.root_token,
                }
            )
            for line in sys.stdin:
                command = line.strip()
                if command == "stop":
                    server.stop()
                    say({"stopped": True})
                elif command == "start":
                    server.start()
                    say({"started": True})
                elif command:
                    say({"error": f"unknown command {command!r}"})
        finally:
            server.stop()


if __name__ == "__main__":
    main()
