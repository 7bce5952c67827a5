"""Subscription fan-out: N websockets follow one user's profileUpdated; one change; how fast
does each socket hear of it?

`powermemo-gql serve` (a subprocess on PostgreSQL; the in-process broker, or Redis with
--redis) gets N graphql-transport-ws connections (connection_init with the project's API key),
each subscribed to profileUpdated(userId) of the same user. Once every socket has received a
priming change, each round updates one profile entry (updateProfileEntry over HTTP) and
times, per socket, from just before the mutation is sent until the socket receives the
change. All sockets live in this one client process (one event loop).

    .venv/bin/python bench/fanout.py [--subscribers 200] [--rounds 5] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import common
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

SUBSCRIPTION = """
subscription Follow($userId: ID!) {
  profileUpdated(userId: $userId) { cursor kind newValue }
}
"""
CREATE_USER = """
mutation($id: ID!) { createUser(input: {userId: $id}) { __typename ... on Error { code message } } }
"""
ADD_ENTRY = """
mutation($userId: ID!) {
  addProfileEntry(input: {userId: $userId, topic: "bench", subTopic: "fanout", content: "v0"}) {
    __typename ... on AddProfileEntryPayload { entry { id } } ... on Error { code message }
  }
}
"""
UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) {
    __typename ... on Error { code message }
  }
}
"""
PROTOCOL = Subprotocol("graphql-transport-ws")
USER = "followed-user"


@dataclass
class Subscriber:
    ws: ClientConnection
    received: dict[str, float] = field(default_factory=dict)  # newValue -> arrival time
    ended: str | None = None


@dataclass
class Round:
    """The sockets still waiting for `marker`, and an event set when none are."""

    marker: str
    waiting: int
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Fanout:
    def __init__(self, server: common.Server, api_key: str) -> None:
        self.server = server
        self.api_key = api_key
        self.subscribers: list[Subscriber] = []
        self.readers: list[asyncio.Task[None]] = []
        self.current: Round | None = None
        self.connect_failures: list[str] = []

    async def open(self, count: int, batch: int, seconds_each: float) -> float:
        """Open `count` subscriptions, `batch` at a time; the seconds it took."""
        began = time.perf_counter()
        for start in range(0, count, batch):
            results = await asyncio.gather(
                *(self._subscribe(seconds_each) for _ in range(min(batch, count - start))),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    self.connect_failures.append(repr(result)[:200])
                else:
                    self.subscribers.append(result)
                    self.readers.append(asyncio.create_task(self._read(result)))
        return time.perf_counter() - began

    async def _subscribe(self, seconds: float) -> Subscriber:
        async with asyncio.timeout(seconds):
            ws = await connect(
                self.server.ws_url, subprotocols=[PROTOCOL], proxy=None, ping_interval=None
            )
            try:
                init = {"Authorization": f"Bearer {self.api_key}"}
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {ack}")
                await ws.send(
                    json.dumps(
                        {
                            "id": "1",
                            "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"userId": USER}},
                        }
                    )
                )
            except BaseException:
                await ws.close()
                raise
        return Subscriber(ws)

    async def _read(self, subscriber: Subscriber) -> None:
        try:
            async for raw in subscriber.ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next" and message["payload"].get("errors"):
                    subscriber.ended = json.dumps(message["payload"]["errors"])[:300]
                    return
                if kind == "next":
                    value = message["payload"]["data"]["profileUpdated"]["newValue"]
                    subscriber.received[value] = arrived
                    current = self.current
                    if current is not None and value == current.marker:
                        current.waiting -= 1
                        if current.waiting == 0:
                            current.done.set()
                elif kind == "ping":
                    await subscriber.ws.send(json.dumps({"type": "pong"}))
                elif kind in ("error", "complete"):
                    subscriber.ended = json.dumps(message)[:300]
                    return
        except Exception as exc:  # the socket closed or broke: recorded, counted as missed
            subscriber.ended = repr(exc)[:300]

    async def change(self, client: httpx.AsyncClient, entry_id: str, marker: str) -> float:
        """Update the entry to `marker`; the time just before the mutation was sent."""
        sent = time.perf_counter()
        result = await common.graphql(
            client,
            self.server.graphql_url,
            self.api_key,
            UPDATE_ENTRY,
            id=entry_id,
            content=marker,
        )
        if result["updateProfileEntry"]["__typename"] != "UpdateProfileEntryPayload":
            raise common.GraphQLFailed(str(result))
        return sent

    async def round(
        self, client: httpx.AsyncClient, entry_id: str, marker: str, wait_seconds: float
    ) -> tuple[float, float]:
        """One change, waited for on every socket (at most `wait_seconds`); when it was sent, and
        when the mutation's response came back."""
        self.current = Round(marker, waiting=len(self.subscribers))
        sent = await self.change(client, entry_id, marker)
        answered = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.current.done.wait(), wait_seconds)
        self.current = None
        return sent, answered

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        closing = [s.ws.close() for s in self.subscribers]
        for start in range(0, len(closing), 100):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15):
                    await asyncio.gather(*closing[start : start + 100], return_exceptions=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=200, help="websockets (up to ~1000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured changes")
    parser.add_argument("--connect-batch", type=int, default=50, help="sockets opened at once")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per round")
    parser.add_argument("--redis", default="", help="redis URL for pub/sub (default: in-process)")
    parser.add_argument("--pool-size", type=int, default=10, help="server database_pool_size")
    parser.add_argument("--database", default=common.DEFAULT_DB)
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    limit = common.raise_fd_limit(2 * args.subscribers + 512)
    if limit < args.subscribers + 256:
        raise SystemExit(f"open-files limit {limit} is too low for {args.subscribers} sockets")
    common.reset_database(args.database)
    print(common.machine_summary(await common.postgres_version(args.database)))
    print(
        f"subscribers={args.subscribers} rounds={args.rounds} "
        f"pubsub={'redis' if args.redis else 'in-process'} pool_size={args.pool_size} "
        f"nofile={limit}\n"
    )
    with common.running_server(
        args.database,
        redis_url=args.redis,
        database_pool_size=args.pool_size,
        ws_connection_init_timeout=60,
        # All sockets use one API key: the default cap of 100 per key would refuse the rest.
        ws_max_connections_per_key=args.subscribers + 10,
    ) as server:
        project = await common.create_project(server)
        async with httpx.AsyncClient(timeout=60) as client:
            created = await common.graphql(
                client, server.graphql_url, project.api_key, CREATE_USER, id=USER
            )
            if created["createUser"]["__typename"] != "CreateUserPayload":
                raise common.GraphQLFailed(str(created))
            added = await common.graphql(
                client, server.graphql_url, project.api_key, ADD_ENTRY, userId=USER
            )
            entry_id = added["addProfileEntry"]["entry"]["id"]

            fanout = Fanout(server, project.api_key)
            try:
                await measure(fanout, client, entry_id, args)
            finally:
                await fanout.close()


async def measure(
    fanout: Fanout, client: httpx.AsyncClient, entry_id: str, args: argparse.Namespace
) -> None:
    opened = await fanout.open(args.subscribers, args.connect_batch, seconds_each=30)
    print(
        f"opened {len(fanout.subscribers)} subscriptions in {opened:.2f} s "
        f"({len(fanout.connect_failures)} failed)"
    )
    for failure in fanout.connect_failures[:3]:
        print(f"  connect failure: {failure}")

    # Subscriptions start at the feed's end when the server has set them up: prime until
    # every socket has seen a change, so that each one follows the live feed.
    def primed() -> int:
        return sum(any(k.startswith("prime-") for k in s.received) for s in fanout.subscribers)

    for attempt in range(10):
        await fanout.round(client, entry_id, f"prime-{attempt}", wait_seconds=5)
        if primed() == len(fanout.subscribers):
            break
    still_open = sum(s.ended is None for s in fanout.subscribers)
    print(f"{primed()} of {len(fanout.subscribers)} sockets primed, {still_open} still open\n")

    delays: list[float] = []
    rows = []
    gc_before = await gc_pauses(client, fanout.server)
    for n in range(args.rounds):
        await asyncio.sleep(0.5)
        marker = f"round-{n}"
        with common.CpuMeter(fanout.server.process.pid) as cpu:
            sent, answered = await fanout.round(client, entry_id, marker, args.timeout)
        got = [s.received[marker] - sent for s in fanout.subscribers if marker in s.received]
        delays.extend(got)
        s = common.Summary.of(got)
        rows.append(
            [
                n + 1,
                f"{len(got)}/{len(fanout.subscribers)}",
                common.ms(answered - sent),
                common.ms(s.p50),
                common.ms(s.p90),
                common.ms(s.p99),
                common.ms(s.max),
                common.ms(cpu.server),
                common.ms(cpu.client),
            ]
        )
    total = common.Summary.of(delays)
    expected = args.rounds * args.subscribers
    rows.append(
        [
            "all",
            f"{len(delays)}/{expected}",
            "",
            common.ms(total.p50),
            common.ms(total.p90),
            common.ms(total.p99),
            common.ms(total.max),
            "",
            "",
        ]
    )
    common.print_table(
        [
            "round",
            "received",
            "mutation ms",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "server CPU ms",
            "client CPU ms",
        ],
        rows,
    )
    gc_after = await gc_pauses(client, fanout.server)
    print_gc_report("during the rounds", gc_before, gc_after)
    print_gc_report("since the server started", {}, gc_after)
    ended = [s.ended for s in fanout.subscribers if s.ended]
    if ended:
        print(f"{len(ended)} subscriptions ended early; first: {ended[0]}")


async def gc_pauses(client: httpx.AsyncClient, server: common.Server) -> dict[str, float]:
    """The server's powermemo_gc_pause_seconds samples of full (generation 2) collections:
    bucket bound ("+Inf" too) -> count at or under it, "sum" and "count"."""
    text = (await client.get(f"{server.base_url}/metrics")).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("powermemo_gc_pause_seconds") or 'generation="2"' not in line:
            continue
        name_and_labels, _, value = line.rpartition(" ")
        if "_bucket" in name_and_labels:
            bound = name_and_labels.split('le="')[1].split('"')[0]
            samples[bound] = float(value)
        elif name_and_labels.startswith("powermemo_gc_pause_seconds_sum"):
            samples["sum"] = float(value)
        elif name_and_labels.startswith("powermemo_gc_pause_seconds_count"):
            samples["count"] = float(value)
    return samples


def print_gc_report(when: str, before: dict[str, float], after: dict[str, float]) -> None:
    """Full collections between two readings: how many, how long, how many over 20 ms."""
    count = after.get("count", 0) - before.get("count", 0)
    if count == 0:
        print(f"full GC collections {when}: 0")
        return
    total = after.get("sum", 0) - before.get("sum", 0)
    under = {bound: after.get(bound, 0) - before.get(bound, 0) for bound in after}
    over_20 = count - under.get("0.02", 0)
    bounded = [
        float(b) for b, n in under.items() if b not in ("sum", "count", "+Inf") and n == count
    ]
    longest = f"<= {min(bounded) * 1000:g} ms" if bounded else "> 1 s"
    print(
        f"full GC collections {when}: {count:g}, mean {total / count * 1000:.1f} ms, "
        f"longest {longest}, over 20 ms: {over_20:g}"
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except httpx.ConnectError as exc:
        raise SystemExit(f"could not reach the server: {exc}") from exc
