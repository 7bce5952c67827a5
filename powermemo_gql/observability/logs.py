"""Logs: plain lines in development, JSON lines in production; a request id on every line."""

from __future__ import annotations

import json
import logging
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"

# The id of the request being handled; "-" outside any request (startup, background work).
request_id: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def scrub_query(target: str) -> str:
    """A request target with every query value hidden: keys and tokens travel there
    (`/dashboard?key=`); the parameter names are enough to tell requests apart."""
    path, separator, query = target.partition("?")
    if not separator:
        return target
    names = [part.partition("=")[0] for part in query.split("&") if part]
    return f"{path}?" + "&".join(f"{name}=***" for name in names)


def _scrubbed(value: object) -> object:
    if isinstance(value, str) and "=" in value.partition("?")[2]:
        return scrub_query(value)
    return value


class ScrubQueryStrings(logging.Filter):
    """On the access logger: the request line's query string, values hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_scrubbed(arg) for arg in record.args)
        elif not record.args and isinstance(record.msg, str):
            record.msg = " ".join(str(_scrubbed(word)) for word in record.msg.split(" "))
        return True


def scrub_access_log() -> None:
    """However uvicorn was started (our `serve` or uvicorn's own command line)."""
    for name in ("uvicorn.access", "uvicorn.error"):  # websockets are logged on .error
        target = logging.getLogger(name)
        if not any(isinstance(f, ScrubQueryStrings) for f in target.filters):
            target.addFilter(ScrubQueryStrings())


class StateChanges:
    """Logs a dependency going down or coming back once, not at every readiness probe."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._up: bool | None = None

    def report(self, up: bool, reason: str = "") -> None:
        was, self._up = self._up, up
        if up == was:
            return
        if not up:
            self._logger.warning("%s does not answer: %s", self._what, reason)
        elif was is not None:
            self._logger.info("%s answers again", self._what)


def reason_of(error: BaseException) -> str:
    """One line for a log: the exception's type and the start of its text."""
    text = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


def configure_logging(level: str, json_lines: bool) -> None:
    """Root logging for the process (uvicorn's loggers included)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    scrub_access_log()


class RequestIdMiddleware:
    """Takes X-Request-ID from the request (if sane) or makes one; echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
