"""The fault drill: two API instances and a worker on a PostgreSQL and a Redis of its own,
under insert, flush and subscription load, while it kills, restarts and freezes them and the
LLM times out, rate-limits, fails and answers garbage. Then it audits the database against
what the clients were told, and exits non-zero if any check fails.

    .venv/bin/python bench/faults/drill.py            # ~2.5 minutes of faults
    .venv/bin/python bench/faults/drill.py --quick    # ~45 s, for CI
    .venv/bin/python bench/faults/drill.py --seconds 300

See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as `python bench/faults/drill.py`
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    CREATE_API_KEY,
    CREATE_PROJECT,
    _command_env,
    free_port,
    graphql,
    machine_summary,
    powermemo_command,
    print_table,
)
from bench.faults.audit import (  # noqa: E402
    Check,
    ClientRecord,
    audit,
    audit_can_fail,
    flush_states,
    item_states,
    latest_change_ids,
)
from bench.faults.clients import Clients, ResumeCounter  # noqa: E402
from bench.faults.faults import Drill, FaultResult, wait_until  # noqa: E402
from bench.faults.infra import Postgres, Powermemo, Redis  # noqa: E402
from bench.faults.llm import FAULTS, FaultyResponder  # noqa: E402
from tests.llm_server import running_llm  # noqa: E402

LLM_TIMEOUT = 2.0
DRAIN_BOUND = 180.0
CATCH_UP_BOUND = 60.0
USERS = [f"drill-u{i}" for i in range(6)]
FOLLOWED = USERS[:3]


def settings_env(pg: Postgres, redis: Redis, llm_url: str, root_token: str) -> dict[str, str]:
    values = {
        "mode": "production",
        "database_url": pg.url,
        "redis_url": redis.url,
        "migrate_on_startup": "false",
        "rate_limit_per_minute": "0",
        "log_level": "WARNING",
        "database_pool_size": "5",
        "llm_base_url": llm_url,
        "llm_timeout_seconds": f"{LLM_TIMEOUT:g}",
        "llm_max_retries": "2",
        "llm_retry_backoff_seconds": "0.2",
        "llm_max_concurrency": "2",
        # Small buffers and a short idle interval: the worker flushes often by itself.
        "max_buffer_tokens": "150",
        "buffer_flush_interval": "4",
        # A short lease, so that a killed flush is recovered within seconds.
        "flush_lease_seconds": "4",
        "flush_timeout_seconds": "60",
    }
    return _command_env(
        POWERMEMO_ROOT_TOKEN=root_token,
        POWERMEMO_LLM_API_KEY="drill",
        **{f"POWERMEMO_{k.upper()}": v for k, v in values.items()},
    )


async def create_project(url: str, root_token: str) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        created = await graphql(http, url, root_token, CREATE_PROJECT, name="drill")
        project_id = created["createProject"]["project"]["id"]
        issued = await graphql(http, url, root_token, CREATE_API_KEY, projectId=project_id)
    secret: str = issued["createApiKey"]["secret"]
    return secret


Step = Callable[[], Awaitable[list[FaultResult]]]


def _alone(fault: Callable[[], Awaitable[FaultResult]]) -> Step:
    async def step() -> list[FaultResult]:
        return [await fault()]

    return step


def _together(faults: Sequence[Callable[[], Awaitable[FaultResult]]]) -> Step:
    async def step() -> list[FaultResult]:
        return list(await asyncio.gather(*(fault() for fault in faults)))

    return step


async def run_faults(drill: Drill, seconds: float, quick: bool) -> list[FaultResult]:
    """The faults one after the other, spread over `seconds`; each waits for its recovery."""
    steps = [
        _alone(fault)
        for fault in (
            drill.kill_worker,
            drill.restart_postgres,
            drill.kill_api,
            drill.freeze_redis,
            drill.freeze_postgres,
            drill.restart_redis,
        )
    ]
    llm_faults = [functools.partial(drill.llm_fault, kind) for kind in FAULTS]
    if quick:  # the four LLM faults at once, to fit in the short run
        steps.append(_together(llm_faults))
    else:
        steps.extend(_alone(fault) for fault in llm_faults)
    gap = seconds / (len(steps) + 1)
    results: list[FaultResult] = []
    for number, step in enumerate(steps, start=1):
        pause = drill.t0 + number * gap - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        for result in await step():
            recovered = "not recovered" if result.recovery is None else f"{result.recovery:.1f} s"
            print(f"[{result.at:6.1f} s] {result.fault}: {recovered}", flush=True)
            results.append(result)
    return results


async def drain(drill: Drill, record: ClientRecord) -> float:
    """Stop the faults' after-effects: flush until every item is done and every subscriber
    has caught up with the feed. Seconds it took."""
    began = time.monotonic()
    drill.llm.healthy()

    async def all_done() -> bool:
        states = await item_states(drill.pg.dsn)
        if set(states) <= {"done"}:
            return True
        await drill.clients.drain()
        return False

    async def caught_up() -> bool:
        latest = await latest_change_ids(drill.pg.dsn)
        return all(
            latest.get(user, 0) <= max([record.start_ids[user], *record.received[user]])
            for user in FOLLOWED
        )

    await wait_until(all_done, DRAIN_BOUND)
    await wait_until(caught_up, CATCH_UP_BOUND)
    return time.monotonic() - began


async def main_async(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack) -> int:
    pg, redis = Postgres(tmp), Redis(tmp)
    stack.callback(pg.stop)
    stack.callback(redis.stop)
    await asyncio.to_thread(pg.start)
    await asyncio.to_thread(redis.start)
    llm_server = stack.enter_context(running_llm())
    responder = FaultyResponder(LLM_TIMEOUT, args.rate, args.seed, delay=0.3)
    llm_server.responder = responder
    root_token = secrets.token_urlsafe(24)
    env = settings_env(pg, redis, llm_server.base_url, root_token)
    await asyncio.to_thread(
        subprocess.run,
        [str(powermemo_command()), "migrate"],
        env=env,
        check=True,
        timeout=180,
        stdout=subprocess.DEVNULL,
    )
    api_env = {**env, "POWERMEMO_BACKGROUND_FLUSHES": "false"}
    apis = [
        Powermemo(f"api-{n}", "serve", api_env, tmp / f"api-{n}.log", free_port())
        for n in ("a", "b")
    ]
    worker = Powermemo("worker", "worker", env, tmp / "worker.log")
    for process in (*apis, worker):
        stack.callback(process.stop)
        await asyncio.to_thread(process.start)

    record = ClientRecord()
    resumes = ResumeCounter()
    resumes.install()
    urls = [f"{api.base_url}/graphql" for api in apis]
    key = await create_project(urls[0], root_token)
    clients = Clients(urls, key, USERS, record, seed=args.seed)
    await clients.create_users()
    drill = Drill(pg, redis, apis, worker, responder, clients, args.freeze)

    subscribers = []
    for n, user in enumerate(FOLLOWED):
        started = asyncio.Event()
        base = apis[n % len(apis)].base_url
        subscribers.append(asyncio.create_task(clients.subscriber(base, user, started)))
        await asyncio.wait_for(started.wait(), timeout=60)
    drill.t0 = time.monotonic()
    load = [asyncio.create_task(clients.inserter(n)) for n in range(2)]
    load.append(asyncio.create_task(clients.flusher()))
    try:
        faults = await run_faults(drill, args.seconds, args.quick)
        rest = drill.t0 + args.seconds - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)
    finally:
        clients.stop.set()
        await asyncio.wait(load, timeout=60)
    load_seconds = time.monotonic() - drill.t0
    drained = await drain(drill, record)
    for task in subscribers:
        task.cancel()
    await asyncio.gather(*subscribers, return_exceptions=True)
    await clients.aclose()
    checks = [*await audit(pg.dsn, record), await audit_can_fail(pg.dsn, record)]
    checks.append(
        Check(
            "subscribers resumed with since after a drop (at least once)",
            ">= 1",
            ", ".join(f"{u}: {resumes.resumes[u]}" for u in FOLLOWED),
            sum(resumes.resumes.values()) >= 1,
        )
    )
    flushes = await flush_states(pg.dsn)
    log_errors = {p.name: p.error_lines() for p in (*apis, worker)}
    outcome = f"flushes by status {dict(flushes)}; ERROR lines in the logs {log_errors}"
    return report(args, faults, checks, responder, clients, load_seconds, drained, outcome)


def report(
    args: argparse.Namespace,
    faults: list[FaultResult],
    checks: list[Check],
    llm: FaultyResponder,
    clients: Clients,
    load_seconds: float,
    drained: float,
    outcome: str,
) -> int:
    print(
        f"\n## Fault drill, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{'--quick' if args.quick else f'--seconds {args.seconds:g}'}"
    )
    print(machine_summary(), "\n")
    print_table(
        [
            "fault",
            "what was done",
            "at (s)",
            "injected",
            "lasted (s)",
            "recovered (s)",
            "recovered when",
        ],
        [
            (
                f.fault,
                f.action,
                f"{f.at:.1f}",
                "yes" if f.injected else "NO",
                f"{f.lasted:.1f}",
                f"{f.recovery:.1f}" if f.recovery is not None else "NOT RECOVERED",
                f.note,
            )
            for f in faults
        ],
    )
    record = clients.record
    injected = ", ".join(f"{k}: {llm.injected[k]}" for k in FAULTS)
    print(
        f"load {load_seconds:.0f} s, drain {drained:.0f} s; inserts acknowledged "
        f"{len(record.acked)}, not acknowledged {len(record.unacked)}; LLM answers "
        f"{llm.answered}, faults injected ({injected}); client errors {clients.errors}; "
        f"{outcome}\n"
    )
    llm_missing = [k for k in FAULTS if llm.injected[k] == 0]
    checks = [
        *checks,
        Check(
            "every fault injected and recovered",
            f"{len(faults)}",
            f"{sum(f.injected and f.recovery is not None for f in faults)}",
            all(f.injected and f.recovery is not None for f in faults),
        ),
        Check("every LLM fault kind injected", "4", f"{4 - len(llm_missing)}", not llm_missing),
    ]
    print_table(
        ["audit", "expected", "found", "ok"],
        [(c.name, c.expected, c.found, "ok" if c.ok else "FAILED") for c in checks],
    )
    failed = [c.name for c in checks if not c.ok]
    print("FAILED: " + "; ".join(failed) if failed else "every audit passed")
    return 1 if failed else 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="length of the load")
    parser.add_argument("--quick", action="store_true", help="~45 s, for CI")
    parser.add_argument(
        "--rate", type=float, default=0.05, help="share of LLM requests that get a random fault"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 45.0)
    args.freeze = 3.0 if args.quick else 8.0
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the ExitStack: everything is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminated)
    tmp = Path(tempfile.mkdtemp(prefix="powermemo-drill-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - the cluster's postgres account must enter it
    # A hard deadline over everything: setup, faults with their recovery bounds, drain, audit.
    deadline = args.seconds + 600
    code = 1
    try:
        with contextlib.ExitStack() as stack:  # stops everything it started, also on failure
            try:
                code = asyncio.run(asyncio.wait_for(main_async(args, tmp, stack), deadline))
            except TimeoutError:
                print(f"FAILED: the drill passed its hard deadline of {deadline:g} s")
            except Exception as exc:  # reported, and the run fails
                print(f"FAILED: {type(exc).__name__}: {exc}")
                for log in sorted(tmp.glob("*.log")):
                    lines = log.read_text(errors="replace").splitlines()[-15:]
                    print(f"--- {log.name}\n" + "\n".join(lines))
    finally:
        if args.keep or code:
            print(f"logs in {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
