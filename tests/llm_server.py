"""An OpenAI-compatible chat-completions server on loopback, answering from a script.

The server runs uvicorn in a thread, so the production `openai` client path (HTTP, JSON,
status codes, timeouts) is what the tests exercise. Requests are recorded for assertions.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int = 11
    completion_tokens: int = 7
    raw: str | None = None  # sent as the body instead of a chat completion
    content_type: str = "application/json"  # of a raw body


Responder = Callable[[dict[str, Any]], Reply]


@dataclass
class ScriptedLLM:
    """Scripted replies are used first, in order; then `responder`, if any; else HTTP 500."""

    port: int = 0
    script: deque[Reply] = field(default_factory=deque)
    responder: Responder | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    # An endpoint without JSON mode: a request asking for response_format gets this answer.
    refuse_response_format: Reply | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def purposes(self) -> list[str]:
        return [r["headers"].get("x-powermemo-purpose", "") for r in self.requests]

    def models(self) -> list[str]:
        return [r["body"].get("model", "") for r in self.requests]

    def json_mode_sent(self) -> list[bool]:
        """Per request, whether it asked for JSON output (response_format json_object)."""
        return [r["body"].get("response_format") == {"type": "json_object"} for r in self.requests]

    def _next(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.refuse_response_format and "response_format" in request["body"]:
                return self.refuse_response_format
            if self.script:
                return self.script.popleft()
        if self.responder is not None:
            return self.responder(request)
        return Reply(status=500, content="no scripted reply left")

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        reply = self._next({"body": body, "headers": dict(request.headers)})
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, media_type=reply.content_type)
        if reply.status != 200:
            return JSONResponse(
                {"error": {"message": reply.content or "scripted failure", "type": "scripted"}},
                status_code=reply.status,
            )
        return JSONResponse(
            chat_completion(
                reply.content,
                model=body.get("model", "scripted"),
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                number=len(self.requests),
            )
        )

    async def _models(self, _request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models),
            ]
        )


def chat_completion(
    content: str | None,
    model: str = "scripted",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    number: int = 1,
) -> dict[str, Any]:
    """The body of a chat completion answering `content` (None: a null content)."""
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def json_reply(payload: Any, **kwargs: Any) -> Reply:
    return Reply(content=json.dumps(payload), **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM(port=_free_port())
    server = uvicorn.Server(
        uvicorn.Config(
            llm.app(), host="127.0.0.1", port=llm.port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("scripted LLM server did not start")
        time.sleep(0.01)
    try:
        yield llm
    finally:
        server.should_exit = True
        thread.join(timeout=10)
