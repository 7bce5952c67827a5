"""What the drill starts and breaks: its own PostgreSQL and Redis, and powermemo processes.

Everything here is started in its own process group (or, for PostgreSQL, by its own data
directory) so that `stop()` can end it whatever state the drill left it in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import free_port, powermemo_command


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL server binaries (initdb, pg_ctl), else initdb's on PATH."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if installed:
        return installed[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise SystemExit("no PostgreSQL server binaries (initdb) found")
    return Path(initdb).parent


def binary(name: str) -> str:
    """The absolute path of a program on the PATH (redis-server, redis-cli, runuser)."""
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found on PATH")
    return found


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A probe that fails is a probe that says "not yet".
        with contextlib.suppress(Exception):
            if condition():
                return True
        time.sleep(interval)
    return False


def _descendants(root: int) -> list[int]:
    """The pids whose parent chain reaches `root` (Linux /proc), `root` first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [root]
    for pid in found:
        found.extend(child for child, parent in parents.items() if parent == pid)
    return found


def signal_tree(root: int, signum: int) -> None:
    """`signum` to a process and all its descendants (SIGSTOP freezes a whole server)."""
    for pid in _descendants(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass
class Postgres:
    """A throwaway cluster in `root`, listening on 127.0.0.1:`port` (trust auth)."""

    root: Path
    port: int = field(default_factory=free_port)
    database: str = "drill"

    @property
    def data(self) -> Path:
        return self.root / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        # initdb refuses to run as root: run the cluster as the postgres account then.
        prefix = [binary("runuser"), "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603  (fixed PostgreSQL binaries, our own arguments)
            [*prefix, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL
        )

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self._run(
            str(postgres_bin() / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            log,
            "-o",
            options,
            "-w",
            "-t",
            "90",
            *args,
            timeout=timeout,
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            str(postgres_bin() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        self._pg_ctl("start")
        self._run(
            str(postgres_bin() / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            self.database,
        )

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def restart_immediate(self) -> None:
        self._pg_ctl("-m", "immediate", "restart")

    def freeze(self) -> None:
        signal_tree(self.postmaster_pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        signal_tree(self.postmaster_pid(), signal.SIGCONT)

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self.thaw()
            self._pg_ctl("-m", "immediate", "stop", timeout=60)
        except (subprocess.SubprocessError, OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                signal_tree(self.postmaster_pid(), signal.SIGKILL)


@dataclass
class Redis:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.root / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603  (fixed binary, our own arguments)
            [
                binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_for(self._answers, timeout=30):
            raise RuntimeError("redis-server did not answer within 30 s")

    def _answers(self) -> bool:
        out = subprocess.run(  # noqa: S603
            [binary("redis-cli"), "-p", str(self.port), "ping"],
            capture_output=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() == b"PONG"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.kill()


@dataclass
class Powermemo:
    """One `powermemo-gql serve` (with a port) or `powermemo-gql worker` subprocess."""

    name: str
    command: str  # serve | worker
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _started_at: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90) -> None:
        args = [str(powermemo_command()), self.command]
        if self.command == "serve":
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603  (our own console script)
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        self._started_at = time.monotonic()
        if not wait_for(self.ready, timeout=ready_timeout, interval=0.3):
            raise RuntimeError(f"{self.name} not ready after {ready_timeout:g} s:\n{self.tail()}")

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        if self.command != "serve":  # a worker has no port: alive after its start-up is ready
            return time.monotonic() - self._started_at > 3.0
        return httpx.get(f"{self.base_url}/readyz", timeout=3).status_code == 200

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill9()

    def error_lines(self) -> int:
        """Log lines at ERROR (JSON logs): what went wrong that the server did not expect,
        and the GraphQL errors strawberry logs."""
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '"level": "ERROR"' in line)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
