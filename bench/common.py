"""Shared helpers of the benchmarks: the database, the server process, load, statistics, tables.

Every benchmark runs on loopback against its own PostgreSQL database (default `bench_pm`),
which it drops, recreates and migrates first. Nothing here touches any other database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from powermemo_gql.core.global_ids import raw_id

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # scripts run as `python bench/x.py`: make `tests` importable
    sys.path.insert(0, str(REPO))

PG_HOST = "127.0.0.1"
# Another server (e.g. scripts/pgvector-server's PostgreSQL with pgvector): POWERMEMO_BENCH_PG_PORT.
PG_PORT = int(os.environ.get("POWERMEMO_BENCH_PG_PORT", "5432"))
PG_USER = "postgres"
DEFAULT_DB = "bench_pm"
# Databases a benchmark must never drop: the test suite's and PostgreSQL's own.
PROTECTED_DATABASES = frozenset(
    {"postgres", "template0", "template1", "test", "test_helper_a", "test_helper_b"}
)

# The ten profile slots every seeded user gets (topics and sub-topics of the default config).
SEED_SLOTS: tuple[tuple[str, str], ...] = (
    ("basic_info", "name"),
    ("basic_info", "age"),
    ("contact_info", "city"),
    ("education", "school"),
    ("demographics", "marital_status"),
    ("work", "company"),
    ("work", "title"),
    ("interest", "music"),
    ("interest", "sports"),
    ("psychological", "goals"),
)


# Statistics and output


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            max=ordered[-1],
            mean=sum(ordered) / len(ordered),
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A Markdown table, aligned for the terminal (paste it as is into docs)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))
    print()


def machine_summary(pg_version: str | None = None) -> str:
    meminfo = Path("/proc/meminfo")
    mem = "?"
    if meminfo.exists():
        for raw in meminfo.read_text().splitlines():
            if raw.startswith("MemTotal:"):
                mem = f"{int(raw.split()[1]) / 1024 / 1024:.1f} GiB"
    parts = [
        f"cpus={os.cpu_count()}",
        f"mem={mem}",
        f"python={platform.python_version()}",
        f"kernel={platform.release()}",
    ]
    if pg_version:
        parts.append(f"postgres={pg_version}")
    parts.append(f"commit={git_revision()}")
    loadavg = Path("/proc/loadavg")
    if loadavg.exists():  # other work on the machine skews every number: say how much
        parts.append(f"load1={loadavg.read_text().split()[0]}")
    return " ".join(parts)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds spent by the server process and by this (client) process over a block."""

    server_pid: int | None
    server: float = 0.0
    client: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._server0 = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self._client0 = time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.server_pid:
            self.server = process_cpu_seconds(self.server_pid) - self._server0
        self.client = time.process_time() - self._client0


def git_revision() -> str:
    """The checkout's commit, and how many files differ from it (read-only git commands)."""
    git = shutil.which("git")
    if git is None:
        return "?"
    try:
        head = subprocess.run(  # noqa: S603  (fixed read-only command)
            [git, "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(  # noqa: S603  (fixed read-only command)
            [git, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (subprocess.SubprocessError, OSError):
        return "?"
    return f"{head}+{len(changed)}modified" if changed else head


# The database


def dsn(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def sqlalchemy_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _checked_name(database: str) -> str:
    if database in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to use database {database!r}: it is not a benchmark database")
    if not database.replace("_", "").isalnum():
        raise SystemExit(f"database name must be letters, digits and _: {database!r}")
    return database


def _command_env(**overrides: str) -> dict[str, str]:
    """The environment for our child processes: no inherited POWERMEMO_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERMEMO_")}
    env.update(overrides)
    return env


def reset_database(database: str) -> None:
    """DROP and CREATE the benchmark database with psql, then migrate it."""
    name = _checked_name(database)
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql not found on PATH")
    connect = [psql, "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", "postgres"]
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(  # noqa: S603  (our own fixed command; the name is checked above)
            [*connect, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            check=True,
            timeout=60,
        )
    migrate_database(name)


def migrate_database(database: str) -> None:
    """Bring the benchmark database to the newest migration (a no-op when it is there)."""
    name = _checked_name(database)
    subprocess.run(  # noqa: S603  (our own console script)
        [str(powermemo_command()), "migrate"],
        check=True,
        timeout=120,
        cwd=REPO,
        env=_command_env(
            POWERMEMO_DATABASE_URL=sqlalchemy_url(name), POWERMEMO_LOG_LEVEL="WARNING"
        ),
        stdout=subprocess.DEVNULL,
    )


async def postgres_version(database: str) -> str:
    conn = await asyncpg.connect(dsn(database))
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


# An idle backend publishes its pending statistics within PGSTAT_IDLE_INTERVAL (10 s).
STATS_SETTLE_SECONDS = 11.0


async def committed_transactions(database: str) -> int:
    """pg_stat_database.xact_commit of the database, once every idle backend has published
    its statistics (which takes up to 10 s on PostgreSQL 15)."""
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    conn = await asyncpg.connect(dsn(database))
    try:
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database
        )
        return int(value)
    finally:
        await conn.close()


# Seeding rows straight into the migrated schema (COPY), for speed


def seed_content(user_index: int, slot: int) -> str:
    sub_topic = SEED_SLOTS[slot % len(SEED_SLOTS)][1]
    return (
        f"{sub_topic.replace('_', ' ')} of user {user_index}: a short fact of about twelve "
        f"words, variant {slot}"
    )


async def seed_users(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    start: int,
    count: int,
    entries_per_user: int = len(SEED_SLOTS),
    prefix: str = "user-",
    batch: int = 20_000,
) -> list[str]:
    """Users `prefix{start}` .. with `entries_per_user` profile entries each; their ids."""
    if entries_per_user > len(SEED_SLOTS):
        raise ValueError(f"at most {len(SEED_SLOTS)} entries per user (unique topic/sub-topic)")
    now = datetime.now(UTC)
    external_ids: list[str] = []
    for first in range(start, start + count, batch):
        last = min(first + batch, start + count)
        users: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        for index in range(first, last):
            user_id = uuid.uuid4()
            external_id = f"{prefix}{index}"
            external_ids.append(external_id)
            users.append((user_id, project_id, external_id, "{}", now, now))
            for slot in range(entries_per_user):
                topic, sub_topic = SEED_SLOTS[slot]
                entries.append(
                    (
                        uuid.uuid4(),
                        project_id,
                        user_id,
                        topic,
                        sub_topic,
                        seed_content(index, slot),
                        "manual",
                        "[]",
                        now,
                        now,
                    )
                )
        await conn.copy_records_to_table(
            "users",
            records=users,
            columns=["id", "project_id", "external_id", "data", "created_at", "updated_at"],
        )
        await conn.copy_records_to_table(
            "profile_entries",
            records=entries,
            columns=[
                "id",
                "project_id",
                "user_id",
                "topic",
                "sub_topic",
                "content",
                "source",
                "source_blob_ids",
                "created_at",
                "updated_at",
            ],
        )
    return external_ids


# The server, as a subprocess: `powermemo-gql serve`


def powermemo_command() -> Path:
    script = Path(sys.executable).with_name("powermemo-gql")
    if not script.exists():
        raise SystemExit(f"{script} not found: run with the project's venv python")
    return script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards `wanted` (children inherit it); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


@dataclass
class Server:
    base_url: str
    ws_url: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@contextmanager
def running_server(database: str, **settings: object) -> Iterator[Server]:
    """`powermemo-gql serve` on a free loopback port: production mode with a fresh root token,
    no rate limit, no background flushes (unless `settings` say otherwise). One process, one
    uvicorn worker. `settings` are options of config.yaml, passed as POWERMEMO_* variables."""
    port = free_port()
    root_token = secrets.token_urlsafe(24)
    values: dict[str, object] = {
        "mode": "production",
        "database_url": sqlalchemy_url(_checked_name(database)),
        "redis_url": "",
        "migrate_on_startup": False,
        "rate_limit_per_minute": 0,
        "background_flushes": False,
        "log_level": "WARNING",
        "database_pool_size": 10,
    }
    values.update(settings)
    env = _command_env(
        POWERMEMO_ROOT_TOKEN=root_token,
        **{f"POWERMEMO_{k.upper()}": _env_value(v) for k, v in values.items()},
    )
    log_dir = Path(tempfile.mkdtemp(prefix="powermemo-bench-"))
    log_path = log_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  (our own console script, fixed arguments)
            [str(powermemo_command()), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        base_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}/graphql",
        root_token=root_token,
        process=process,
        log_path=log_path,
    )
    try:
        _wait_ready(server, timeout=120)  # a loaded 2-core machine took over 30 s
        yield server
    finally:
        _stop(process)


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited at start:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout:g} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# GraphQL over HTTP


class GraphQLFailed(RuntimeError):
    pass


async def graphql(
    client: httpx.AsyncClient, url: str, token: str, query: str, **variables: Any
) -> dict[str, Any]:
    """The `data` of a response without errors; raises GraphQLFailed otherwise."""
    response = await client.post(
        url,
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise GraphQLFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("errors"):
        raise GraphQLFailed(json.dumps(body["errors"])[:300])
    data: dict[str, Any] = body["data"]
    return data


CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) {
    __typename ... on CreateProjectPayload { project { id } } ... on Error { code message }
  }
}
"""
CREATE_API_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId, name: "bench"}) {
    __typename ... on CreateApiKeyPayload { secret } ... on Error { code message }
  }
}
"""


@dataclass(frozen=True)
class Project:
    id: uuid.UUID
    api_key: str


async def create_project(server: Server, name: str = "bench") -> Project:
    """A project and an API key for it, made with the root token over GraphQL."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await create_project_via(client, server.graphql_url, server.root_token, name=name)


async def create_project_via(
    client: httpx.AsyncClient, graphql_url: str, root_token: str, name: str = "bench"
) -> Project:
    """create_project through a client of the caller's (e.g. an in-process ASGI transport)."""
    created = await graphql(client, graphql_url, root_token, CREATE_PROJECT, name=name)
    result = created["createProject"]
    if result["__typename"] != "CreateProjectPayload":
        raise GraphQLFailed(str(result))
    project_id = result["project"]["id"]
    issued = await graphql(client, graphql_url, root_token, CREATE_API_KEY, projectId=project_id)
    key = issued["createApiKey"]
    if key["__typename"] != "CreateApiKeyPayload":
        raise GraphQLFailed(str(key))
    # The API answers global ids (Node); the floor's SQL needs the row's UUID.
    return Project(id=uuid.UUID(raw_id(project_id, "Project", "id")), api_key=key["secret"])


# Closed-loop load: N workers, each sending its next request when the last one answered


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    wall: float = 0.0
    errors: int = 0
    first_error: str | None = None
    stopped_by_time: bool = False

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else float("nan")


async def run_load(
    operation: Callable[[int], Awaitable[None]],
    total: int,
    concurrency: int,
    time_limit: float,
) -> LoadResult:
    """Run `operation(i)` for i in 0..total-1 on `concurrency` workers; stop early (and say
    so) once `time_limit` seconds have passed."""
    result = LoadResult()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + time_limit

    async def worker() -> None:
        while True:
            index = next(counter)
            if index >= total:
                return
            if time.perf_counter() > deadline:
                result.stopped_by_time = True
                return
            began = time.perf_counter()
            try:
                await operation(index)
            except Exception as exc:  # counted and reported; the run goes on
                result.errors += 1
                result.first_error = result.first_error or repr(exc)[:300]
                continue
            result.latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall = time.perf_counter() - start
    return result


def http_client(concurrency: int) -> httpx.AsyncClient:
    """Keep-alive connections, one per worker."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=httpx.Timeout(30.0),
    )
