"""What the memory pipeline costs per 1,000 chat turns: LLM calls, prompt tokens, flushes.

A scripted OpenAI-compatible LLM (tests/llm_server.py, on loopback, answering at once) serves
`powermemo-gql serve` (a subprocess on PostgreSQL). Synthetic chat turns (one user message and
one assistant reply each, one insertBlob per turn) go in for a few users at once. Flushes run
either by the server's size trigger (`--trigger size`, the default: a background flush once
a buffer's idle items pass max_buffer_tokens) or by the client (`--trigger manual`:
flushBuffer(wait: true) once its own count passes max_buffer_tokens). What is left at the end
is flushed with flushBuffer(wait: true).

Prompt tokens are counted for real: every request's messages, with
powermemo_gql.core.tokens.count_tokens (cl100k_base, message contents only; the chat format
adds ~4 tokens per message on top). The scripted LLM reports these same counts as its usage,
so `llmUsage` (the server's accounting) must agree with the request log.

    .venv/bin/python bench/flush_overhead.py [--turns 1000] [--users 4] [--trigger size]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import common
import httpx

from powermemo_gql.blobs.content import text_of
from powermemo_gql.blobs.models import BlobType
from powermemo_gql.core.tokens import count_tokens
from tests.llm_server import Reply, json_reply, running_llm

CREATE_USER = """
mutation($id: ID!) { createUser(input: {userId: $id}) { __typename ... on Error { code message } } }
"""
INSERT = """
mutation Insert($input: InsertBlobInput!) {
  insertBlob(input: $input) { __typename ... on Error { code message } }
}
"""
FLUSH = """
mutation Flush($userId: ID!) {
  flushBuffer(input: {userId: $userId, wait: true}) {
    __typename
    ... on FlushBufferPayload { flush { status itemCount llmCalls } }
    ... on Error { code message }
  }
}
"""
USAGE = "query { llmUsage { flushes llmCalls inputTokens outputTokens } }"
BUFFER = "query($id: ID!) { user(userId: $id) { buffer { status idleTokens failedCount } } }"

# Synthetic conversation material: the user tells about themselves, the assistant answers.
CITIES = ["Lyon", "Osaka", "Porto", "Denver", "Tartu", "Recife", "Leeds", "Graz"]
JOBS = ["chemistry teacher", "nurse", "data engineer", "baker", "architect", "pilot"]
HOBBIES = ["climbing", "jazz piano", "birdwatching", "sourdough", "chess", "trail running"]
FOODS = ["ramen", "paella", "dumplings", "falafel", "pierogi", "tacos"]
USER_LINES = [
    "I live in {city} now and I work as a {job}.",
    "Last weekend I spent most of Saturday on {hobby} with two friends from work.",
    "Honestly my favourite food is still {food}, I could eat it every day.",
    "My sister keeps asking me to visit her, but the trip from {city} is long.",
    "I have been trying to get better at {hobby}, maybe an hour every evening.",
    "Work was stressful this week; being a {job} means a lot of paperwork lately.",
    "I am thinking about learning Portuguese before my holiday next spring.",
    "Do you have ideas for a quick dinner? I only have rice, eggs and some spinach.",
]
ASSISTANT_LINES = [
    "That sounds like a full week. It might help to plan one quiet evening just for rest.",
    "Great question! A simple option is fried rice with spinach and a soft egg on top.",
    "It is impressive that you keep practising every day; steady habits add up quickly.",
    "Visiting family can be tiring, but many people find the trip worth it in the end.",
    "If you want, I can suggest a short study plan with ten minutes of vocabulary a day.",
    "Paperwork is draining. Batching it into one block per day often makes it lighter.",
]
# Profile slots the scripted extraction fills in turn, so later flushes hit existing entries.
FACT_SLOTS = [
    ("basic_info", "name"),
    ("contact_info", "city"),
    ("work", "title"),
    ("work", "company"),
    ("interest", "sports"),
    ("interest", "music"),
    ("interest", "foods"),
    ("psychological", "goals"),
    ("education", "major"),
    ("life_event", "relocation"),
    ("demographics", "marital_status"),
    ("basic_info", "language_spoken"),
]


# Dated turns (--dated, the default): a history said over weeks, a turn every 2 h 41 min, so
# the prompts carry day headers and times as an imported history's would.
HISTORY_START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
TURN_GAP = timedelta(hours=2, minutes=41)


def chat_turn(rng: random.Random) -> list[dict[str, str]]:
    def fill(line: str) -> str:
        return line.format(
            city=rng.choice(CITIES),
            job=rng.choice(JOBS),
            hobby=rng.choice(HOBBIES),
            food=rng.choice(FOODS),
        )

    user = " ".join(fill(rng.choice(USER_LINES)) for _ in range(rng.randint(1, 3)))
    assistant = " ".join(rng.choice(ASSISTANT_LINES) for _ in range(rng.randint(1, 2)))
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


@dataclass
class PurposeStats:
    calls: int = 0
    prompt_tokens: int = 0
    system_tokens: int = 0
    user_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ScriptedMemory:
    """Answers each pipeline step by its purpose, at once, reporting real token counts."""

    stats: dict[str, PurposeStats] = field(default_factory=lambda: defaultdict(PurposeStats))
    _facts_given: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: dict[str, Any]) -> Reply:
        purpose = request["headers"].get("x-powermemo-purpose", "")
        messages = request["body"]["messages"]
        system = "".join(m["content"] for m in messages if m["role"] == "system")
        user = "".join(m["content"] for m in messages if m["role"] != "system")
        answer = self._answer(purpose, user)
        if answer is None:
            return Reply(status=500, content=f"unscripted purpose {purpose!r}")
        content = json.dumps(answer)
        system_tokens, user_tokens = count_tokens(system), count_tokens(user)
        completion_tokens = count_tokens(content)
        with self._lock:
            stats = self.stats[purpose]
            stats.calls += 1
            stats.system_tokens += system_tokens
            stats.user_tokens += user_tokens
            stats.prompt_tokens += system_tokens + user_tokens
            stats.completion_tokens += completion_tokens
        return json_reply(
            answer,
            prompt_tokens=system_tokens + user_tokens,
            completion_tokens=completion_tokens,
        )

    def _answer(self, purpose: str, user: str) -> dict[str, Any] | None:
        if purpose == "summarize":
            # About a sixth of the conversation's words, as a summary might be.
            words = user.split()
            return {"summary": " ".join(words[: max(20, min(len(words) // 6, 200))])}
        if purpose == "extract":
            with self._lock:
                start = self._facts_given
                self._facts_given += 3
            facts = [
                {
                    "topic": FACT_SLOTS[n % len(FACT_SLOTS)][0],
                    "sub_topic": FACT_SLOTS[n % len(FACT_SLOTS)][1],
                    "content": f"observation {n}: {user[:60].strip()}",
                }
                for n in range(start, start + 3)
            ]
            return {"facts": facts}
        if purpose == "merge":
            items = json.loads(user)
            return {
                "decisions": [
                    {
                        "index": item["index"],
                        "action": "update" if item["index"] % 2 == 0 else "abort",
                        # Several observations of one slot come as a list: merged here.
                        "content": "; ".join(item["observation"])
                        if isinstance(item["observation"], list)
                        else item["observation"],
                    }
                    for item in items
                ]
            }
        if purpose == "tag_event":
            return {"tags": []}
        if purpose == "organize":
            entries = json.loads(user)["entries"]
            return {"entries": entries[:10]}
        if purpose == "shorten":
            return {
                "entries": [
                    {"index": e["index"], "content": e["content"][:200]} for e in json.loads(user)
                ]
            }
        return None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000, help="chat turns in all")
    parser.add_argument("--users", type=int, default=4, help="users, chatting at once")
    parser.add_argument("--trigger", choices=["size", "manual"], default="size")
    parser.add_argument("--max-buffer-tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=90.0, help="seconds for the inserts")
    parser.add_argument("--database", default=common.DEFAULT_DB)
    parser.add_argument(
        "--dated",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give every message a created_at (a history over weeks); --no-dated: none",
    )
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    common.reset_database(args.database)
    print(common.machine_summary(await common.postgres_version(args.database)))
    print(
        f"turns={args.turns} users={args.users} trigger={args.trigger} "
        f"max_buffer_tokens={args.max_buffer_tokens} dated={args.dated}\n"
    )
    responder = ScriptedMemory()
    with running_llm() as llm:
        llm.responder = responder
        with common.running_server(
            args.database,
            llm_base_url=llm.base_url,
            llm_max_retries=1,
            llm_retry_backoff_seconds=0,
            max_buffer_tokens=args.max_buffer_tokens,
            background_flushes=args.trigger == "size",
        ) as server:
            project = await common.create_project(server)
            report = await run(server, project, args)
            logged_requests = len(llm.requests)
    print_report(report, responder, logged_requests, args)


@dataclass
class RunReport:
    wall: float
    insert_latencies: list[float]
    client_flush_latencies: list[float]
    usage: dict[str, int]
    leftovers: list[dict[str, Any]]
    flushes: list[asyncpg.Record]
    chat_tokens: int
    entries: int
    events: int


async def run(
    server: common.Server, project: common.Project, args: argparse.Namespace
) -> RunReport:
    users = [f"chatter-{n}" for n in range(args.users)]
    insert_latencies: list[float] = []
    flush_latencies: list[float] = []
    deadline = time.monotonic() + args.time_limit

    async with common.http_client(args.users + 1) as client:

        async def call(query: str, **variables: Any) -> dict[str, Any]:
            return await common.graphql(
                client, server.graphql_url, project.api_key, query, **variables
            )

        async def flush(user: str) -> None:
            began = time.perf_counter()
            result = (await call(FLUSH, userId=user))["flushBuffer"]
            flush_latencies.append(time.perf_counter() - began)
            if result["__typename"] != "FlushBufferPayload":
                raise common.GraphQLFailed(str(result))

        async def chat(user_index: int) -> None:
            user = users[user_index]
            rng = random.Random(args.seed * 1000 + user_index)  # noqa: S311  (test data)
            turns = args.turns // args.users + (user_index < args.turns % args.users)
            pending_tokens = 0
            for turn in range(turns):
                if time.monotonic() > deadline:
                    print(f"  {user}: stopped at the {args.time_limit:g} s limit")
                    return
                messages = chat_turn(rng)
                said = (HISTORY_START + turn * TURN_GAP).isoformat()
                dated = [{**m, "createdAt": said} if args.dated else m for m in messages]
                blob = {"chat": {"messages": [{**m, "role": m["role"].upper()} for m in dated]}}
                began = time.perf_counter()
                result = (await call(INSERT, input={"userId": user, "blob": blob}))["insertBlob"]
                insert_latencies.append(time.perf_counter() - began)
                if result["__typename"] != "InsertBlobPayload":
                    raise common.GraphQLFailed(str(result))
                if args.trigger == "manual":
                    # The server's own count of the item: cl100k tokens of the chat's text.
                    pending_tokens += count_tokens(text_of(BlobType.CHAT, {"messages": messages}))
                    if pending_tokens > args.max_buffer_tokens:
                        await flush(user)
                        pending_tokens = 0

        for user in users:
            created = (await call(CREATE_USER, id=user))["createUser"]
            if created["__typename"] != "CreateUserPayload":
                raise common.GraphQLFailed(str(created))
        started = time.perf_counter()
        await asyncio.gather(*(chat(n) for n in range(args.users)))
        # Whatever is left (and any background flush still running) is flushed now:
        # flushBuffer(wait: true) waits for the user's running flush first.
        for user in users:
            await flush(user)
        wall = time.perf_counter() - started
        usage = (await call(USAGE))["llmUsage"]
        leftovers = [(await call(BUFFER, id=user))["user"]["buffer"] for user in users]

    conn = await asyncpg.connect(common.dsn(args.database))
    try:
        flushes = await conn.fetch(
            "SELECT trigger, status, item_count, llm_calls, "
            "extract(epoch FROM finished_at - started_at) AS seconds FROM flushes"
        )
        chat_tokens = await conn.fetchval("SELECT coalesce(sum(token_count), 0) FROM buffer_items")
        entries = await conn.fetchval("SELECT count(*) FROM profile_entries")
        events = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return RunReport(
        wall=wall,
        insert_latencies=insert_latencies,
        client_flush_latencies=flush_latencies,
        usage=usage,
        leftovers=leftovers,
        flushes=flushes,
        chat_tokens=int(chat_tokens),
        entries=int(entries),
        events=int(events),
    )


def print_report(
    report: RunReport, responder: ScriptedMemory, logged_requests: int, args: argparse.Namespace
) -> None:
    turns = len(report.insert_latencies)
    per_k = 1000 / turns if turns else float("nan")
    stats = responder.stats
    counted_prompt = sum(s.prompt_tokens for s in stats.values())
    counted_completion = sum(s.completion_tokens for s in stats.values())
    counted_calls = sum(s.calls for s in stats.values())
    usage = report.usage
    done = [f for f in report.flushes if f["status"] == "done"]
    not_done = len(report.flushes) - len(done)
    left = [b for b in report.leftovers if b["idleTokens"] or b["failedCount"]]
    if not_done or left or usage["llmCalls"] != counted_calls:
        print(f"WARNING: {not_done} flushes not done; buffers left: {left}")
    if usage["llmCalls"] != logged_requests:
        print(f"WARNING: llmUsage has {usage['llmCalls']} calls, the LLM saw {logged_requests}")

    print(f"chat turns inserted: {turns}; chat tokens buffered: {report.chat_tokens}")
    print(
        f"wall time (inserts and flushes): {report.wall:.1f} s; profile entries "
        f"{report.entries}, events {report.events}\n"
    )
    common.print_table(
        ["per 1,000 chat turns", "from llmUsage", "from the LLM's request log"],
        [
            ["flushes", f"{usage['flushes'] * per_k:.1f}", ""],
            [
                "LLM calls",
                f"{usage['llmCalls'] * per_k:.1f}",
                f"{logged_requests * per_k:.1f}",
            ],
            [
                "prompt (input) tokens",
                f"{usage['inputTokens'] * per_k:,.0f}",
                f"{counted_prompt * per_k:,.0f}",
            ],
            [
                "completion (output) tokens",
                f"{usage['outputTokens'] * per_k:,.0f}",
                f"{counted_completion * per_k:,.0f}",
            ],
            ["chat tokens buffered", "", f"{report.chat_tokens * per_k:,.0f}"],
            [
                "prompt tokens per chat token",
                "",
                f"{counted_prompt / report.chat_tokens:.2f}" if report.chat_tokens else "",
            ],
        ],
    )
    rows = []
    for purpose, s in sorted(stats.items(), key=lambda kv: -kv[1].prompt_tokens):
        rows.append(
            [
                purpose,
                s.calls,
                f"{s.calls * per_k:.1f}",
                f"{s.system_tokens / s.calls:.0f}",
                f"{s.user_tokens / s.calls:.0f}",
                f"{s.prompt_tokens * per_k:,.0f}",
                f"{100 * s.prompt_tokens / counted_prompt:.0f}%",
            ]
        )
    common.print_table(
        [
            "step",
            "calls",
            "calls/1k turns",
            "system tok/call",
            "input tok/call",
            "prompt tok/1k turns",
            "share",
        ],
        rows,
    )
    by_trigger: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for f in report.flushes:
        by_trigger[f"{f['trigger']} ({f['status']})"].append(f)
    trigger_rows = []
    for name, group in sorted(by_trigger.items()):
        seconds = common.Summary.of(float(f["seconds"] or 0) for f in group)
        trigger_rows.append(
            [
                name,
                len(group),
                f"{sum(f['item_count'] for f in group) / len(group):.1f}",
                f"{sum(f['llm_calls'] for f in group) / len(group):.2f}",
                common.ms(seconds.p50),
                common.ms(seconds.p99),
            ]
        )
    common.print_table(
        ["flushes by trigger", "count", "items/flush", "LLM calls/flush", "p50 ms", "p99 ms"],
        trigger_rows,
    )
    inserts = common.Summary.of(report.insert_latencies)
    timing = [
        [
            "insertBlob",
            inserts.count,
            common.ms(inserts.p50),
            common.ms(inserts.p90),
            common.ms(inserts.p99),
        ]
    ]
    if report.client_flush_latencies:
        flushes = common.Summary.of(report.client_flush_latencies)
        timing.append(
            [
                "flushBuffer(wait: true)",
                flushes.count,
                common.ms(flushes.p50),
                common.ms(flushes.p90),
                common.ms(flushes.p99),
            ]
        )
    common.print_table(["client latency", "count", "p50 ms", "p90 ms", "p99 ms"], timing)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except httpx.ConnectError as exc:
        raise SystemExit(f"could not reach the server: {exc}") from exc
