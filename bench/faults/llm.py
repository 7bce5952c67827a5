"""The drill's LLM: tests/llm_server.py's ScriptedLLM with a responder that misbehaves.

At `rate`, a request gets one of the faults (a delay past llm_timeout_seconds, HTTP 429,
HTTP 500, or a body that is no chat completion); `force(kind, n)` makes the next n requests
get that fault, so that each one happens at least once in every run. The other requests are
answered like tests.integration.memory.conftest.memory_responder: a summary, two facts whose
content changes per request (so flushes write profile changes), no merge decisions, no tags.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import Counter, deque
from typing import Any

from tests.llm_server import Reply

FAULTS = ("timeout", "429", "500", "garbage")


class FaultyResponder:
    def __init__(self, timeout_seconds: float, rate: float, seed: int, delay: float) -> None:
        self.rate = rate
        self.injected: Counter[str] = Counter()
        self.answered = 0
        self._timeout_delay = timeout_seconds + 1.5
        self._delay = delay  # of a normal answer: flushes take a while, so kills land mid-flush
        self._random = random.Random(seed)  # noqa: S311 - fault rates, not cryptography
        self._forced: deque[str] = deque()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def force(self, kind: str, count: int) -> None:
        with self._lock:
            self._forced.extend([kind] * count)

    def healthy(self) -> None:
        """No more faults: the drain phase flushes what is left."""
        with self._lock:
            self.rate = 0.0
            self._forced.clear()

    def __call__(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            if self._forced:
                kind: str | None = self._forced.popleft()
            elif self._random.random() < self.rate:
                kind = self._random.choice(FAULTS)
            else:
                kind = None
            if kind is not None:
                self.injected[kind] += 1
            else:
                self.answered += 1
            number = next(self._numbers)
        if kind == "timeout":
            return Reply(delay=self._timeout_delay, content=json.dumps({"summary": "late"}))
        if kind == "429":
            return Reply(status=429, content="rate limited (drill)")
        if kind == "500":
            return Reply(status=500, content="internal error (drill)")
        if kind == "garbage":  # alternately: no chat completion at all, and content no parser reads
            if number % 2:
                return Reply(raw="<html>502 bad gateway</html>", content_type="text/html")
            return Reply(content="Sure! {{{ not json ]]")
        purpose = request["headers"].get("x-powermemo-purpose", "")
        return Reply(
            content=json.dumps(_answer(purpose, number)),
            delay=self._delay,
            prompt_tokens=100,
            completion_tokens=20,
        )


def _answer(purpose: str, number: int) -> dict[str, Any]:
    if purpose == "summarize":
        return {"summary": f"The user talked about their day (note {number})."}
    if purpose == "extract":
        return {
            "facts": [
                {"topic": "work", "sub_topic": "title", "content": f"teacher, year {number}"},
                {"topic": "interest", "sub_topic": "music", "content": f"jazz record {number}"},
            ]
        }
    if purpose == "merge":
        return {"decisions": []}
    if purpose == "tag_event":
        return {"tags": []}
    return {}  # organize / shorten are not reached with the drill's small profiles
