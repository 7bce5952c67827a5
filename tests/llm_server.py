"""An OpenAI-compatible chat-completions and embeddings server on loopback, from a script.

The server runs uvicorn in a thread, so the production `openai` client path (HTTP, JSON,
status codes, timeouts) is what the tests exercise. Requests are recorded for assertions.
Embeddings are a hashed bag of words unless a test scripts a text's vector.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
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

# Length of the bag-of-words vectors when a request names no `dimensions`.
DEFAULT_EMBEDDING_DIMENSIONS = 64


@dataclass
class ScriptedLLM:
    """Scripted replies are used first, in order; then `responder`, if any; else HTTP 500."""

    port: int = 0
    script: deque[Reply] = field(default_factory=deque)
    responder: Responder | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    # An endpoint without JSON mode: a request asking for response_format gets this answer.
    refuse_response_format: Reply | None = None
    # /v1/embeddings: replies used first, in order, one per request (a 200 Reply without a
    # raw body answers normally, after its delay); vectors sent as given for these texts.
    embedding_script: deque[Reply] = field(default_factory=deque)
    embedding_vectors: dict[str, list[float]] = field(default_factory=dict)
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    embeddings_in_flight_peak: int = 0  # most embedding requests being answered at once
    _embeddings_in_flight: int = 0
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

    def add_embedding_replies(self, *replies: Reply) -> None:
        with self._lock:
            self.embedding_script.extend(replies)

    def embedding_inputs(self) -> list[list[str]]:
        """Per embedding request, the texts it carried."""
        return [list(r["body"]["input"]) for r in self.embedding_requests]

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

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.embedding_requests.append({"body": body, "headers": dict(request.headers)})
            reply = self.embedding_script.popleft() if self.embedding_script else Reply()
            self._embeddings_in_flight += 1
            self.embeddings_in_flight_peak = max(
                self.embeddings_in_flight_peak, self._embeddings_in_flight
            )
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            with self._lock:
                self._embeddings_in_flight -= 1
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, media_type=reply.content_type)
        if reply.status != 200:
            return JSONResponse(
                {"error": {"message": reply.content or "scripted failure", "type": "scripted"}},
                status_code=reply.status,
            )
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        dimensions = body.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS
        vectors = [
            self.embedding_vectors.get(text) or bag_of_words_vector(text, dimensions)
            for text in texts
        ]
        return JSONResponse(
            embeddings_response(vectors, body.get("model", "scripted"), word_count(texts))
        )

    async def _models(self, _request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
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


def embeddings_response(
    vectors: list[list[Any]], model: str = "scripted", prompt_tokens: int = 0
) -> dict[str, Any]:
    """The body of an embeddings answer carrying `vectors`, in order (any JSON: a test may
    send a malformed one)."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def word_count(texts: list[str]) -> int:
    """The prompt_tokens the server reports for these texts: one per word."""
    return sum(len(words(text)) for text in texts)


def bag_of_words_vector(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic, normalised vector: each word adds ±1 at a position its hash picks.

    Texts sharing words are close; texts sharing none are nearly orthogonal. A text without
    words gets the first unit vector.
    """
    vector = [0.0] * dimensions
    for word in words(text):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        return [1.0] + [0.0] * (dimensions - 1)
    return [x / norm for x in vector]


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
