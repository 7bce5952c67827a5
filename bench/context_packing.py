"""pack_context (the user.context field's packing, pure CPU) over synthetic profiles and events.

For each profile size (entries) and token budget: time per call (p50/p90/p99), how full the
result is, and a check that it is never over budget (counted again with count_tokens).

    .venv/bin/python bench/context_packing.py [--sizes 100,1000,5000] [--budgets 500,2000,8000]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import common

from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.events.models import Event
from powermemo_gql.memory.context import RECENT_EVENTS, ContextRequest, pack_context
from powermemo_gql.profiles.config import DEFAULT_SLOTS
from powermemo_gql.profiles.models import ProfileEntry

PHRASES = (
    "likes to travel with family",
    "reads history books about old cities",
    "works remotely for a design studio",
    "prefers tea over coffee",
    "plays piano on weekends",
    "wants to run a marathon next year",
    "speaks French and some Japanese",
    "grew up near the sea",
    "is learning to cook Thai food",
    "volunteers at the local library",
)


def sentence(rng: random.Random, low: int, high: int) -> str:
    """Roughly `low` to `high` words."""
    return ", ".join(rng.choice(PHRASES) for _ in range(max(1, rng.randint(low, high) // 5)))


def synthetic_profile(rng: random.Random, size: int) -> list[ProfileEntry]:
    """`size` entries over the default topics, with made-up sub-topics past the default ones."""
    user_id, project_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    slots = [(s.topic, st.name) for s in DEFAULT_SLOTS for st in s.sub_topics]
    entries = []
    for n in range(size):
        topic, sub_topic = slots[n % len(slots)]
        if n >= len(slots):
            sub_topic = f"{sub_topic}_{n // len(slots)}"
        entries.append(
            ProfileEntry(
                project_id=project_id,
                user_id=user_id,
                topic=topic,
                sub_topic=sub_topic,
                content=sentence(rng, 3, 30),
                updated_at=now - timedelta(minutes=rng.randint(0, 100_000)),
            )
        )
    return entries


def synthetic_events(rng: random.Random, count: int) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(
            project_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            summary=sentence(rng, 15, 60),
            created_at=now - timedelta(days=n),
        )
        for n in range(count)
    ]


def fuzz(rng: random.Random, cases: int, events: list[Event]) -> int:
    """Random sizes, budgets, ratios, preferred topics and buffers: is any result over budget?"""
    topics = [slot.topic for slot in DEFAULT_SLOTS]
    failures = 0
    smallest_slack = None
    for _ in range(cases):
        request = ContextRequest(
            max_tokens=rng.choice([rng.randint(1, 60), rng.randint(60, 10_000)]),
            prefer_topics=rng.sample(topics, rng.randint(0, 3)),
            profile_event_ratio=rng.random(),
            include_buffer=rng.random() < 0.5,
        )
        packed = pack_context(
            request,
            synthetic_profile(rng, rng.randint(0, 1500)),
            events[: rng.randint(0, len(events))],
            [sentence(rng, 5, 80) for _ in range(rng.randint(0, 20))],
        )
        recount = count_tokens(packed.text)
        if recount > request.max_tokens or recount != packed.tokens:
            failures += 1
            print(f"OVER: {request} gave {recount} tokens (reported {packed.tokens})")
        slack = request.max_tokens - recount
        smallest_slack = slack if smallest_slack is None else min(smallest_slack, slack)
    print(f"fuzz: {cases} random cases, {failures} over budget, smallest slack {smallest_slack}")
    return failures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="profile entries, comma-separated")
    parser.add_argument("--budgets", default="500,2000,8000", help="maxTokens, comma-separated")
    parser.add_argument(
        "--events", type=int, default=RECENT_EVENTS, help="events (the server passes 50)"
    )
    parser.add_argument("--calls", type=int, default=300, help="calls per case, at most")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per case, at most")
    parser.add_argument(
        "--fuzz", type=int, default=200, help="extra random cases checked against the budget"
    )
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    budgets = [int(b) for b in args.budgets.split(",")]
    rng = random.Random(args.seed)  # noqa: S311  (test data, not secrets)
    print(common.machine_summary())
    print(f"events={args.events} calls<= {args.calls} per case, <= {args.seconds:g} s per case\n")
    count_tokens("warm up the encoding")
    events = synthetic_events(rng, args.events)
    rows = []
    violations = 0
    for size in sizes:
        profile = synthetic_profile(rng, size)
        for budget in budgets:
            request = ContextRequest(max_tokens=budget)
            pack_context(request, profile, events, [])  # warm-up
            times: list[float] = []
            deadline = time.perf_counter() + args.seconds
            packed = None
            while len(times) < args.calls and time.perf_counter() < deadline:
                began = time.perf_counter()
                packed = pack_context(request, profile, events, [])
                times.append(time.perf_counter() - began)
            assert packed is not None
            recount = count_tokens(packed.text)
            over = recount > budget or packed.tokens != recount
            violations += over
            s = common.Summary.of(times)
            rows.append(
                [
                    size,
                    budget,
                    s.count,
                    common.ms(s.p50),
                    common.ms(s.p90),
                    common.ms(s.p99),
                    recount,
                    f"{100 * recount / budget:.0f}%",
                    packed.profile_entries,
                    packed.events,
                    "OVER" if over else "ok",
                ]
            )
    common.print_table(
        [
            "entries",
            "budget",
            "calls",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "tokens",
            "filled",
            "entries in",
            "events in",
            "check",
        ],
        rows,
    )
    violations += fuzz(rng, args.fuzz, events)
    if violations:
        raise SystemExit(f"{violations} case(s) over budget or miscounted")


if __name__ == "__main__":
    main()
