"""A slow LLM must not slow anything else: flushes wait on the network, not on the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.memory.conftest import memory_responder
from tests.llm_server import Reply, ScriptedLLM
from tests.support import ProjectHandle


async def test_event_loop_stays_responsive_during_a_slow_flush(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    fast = memory_responder()

    def slow(request: dict[str, Any]) -> Reply:
        return Reply(content=fast(request).content, delay=1.5)

    llm.responder = slow
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    await project.api.ok(
        'mutation { insertBlob(input: {userId: "alice", blob: {document: {content: "x"}}})'
        " { __typename } }"
    )
    flushing = asyncio.create_task(
        project.api.ok(
            'mutation { flushBuffer(input: {userId: "alice", wait: true}) { __typename } }'
        )
    )
    for _ in range(500):  # until the flush is waiting on the LLM (5 s at most)
        if llm.requests:
            break
        await asyncio.sleep(0.01)
    assert llm.requests

    latencies = []
    for _ in range(10):
        started = time.monotonic()
        await project.api.ok('{ health { ok } user(userId: "alice") { buffer { status } } }')
        latencies.append(time.monotonic() - started)
    assert not flushing.done()  # all of that happened while the flush was still running
    # Generous bound: a blocked loop would hold every request for the LLM's 1.5 s.
    assert max(latencies) < 0.5, latencies
    await flushing
