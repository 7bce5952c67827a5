"""`powermemo-gql import-chats`: a JSONL history into users' buffers, in batches.

The rules (docs/cli.md): a line that is not a chat record, or that the server refuses, is
reported with its line number (1-based, blank lines counted) and skipped; the import goes on.
A fatal error (the key refused, the server unreachable, still rate limited after every wait)
stops it at once with one message. Every line carries an idempotency key derived from the
file, so a re-run, or a batch sent again after a failure, stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from powermemo_gql.client import (
    ConnectionFailedError,
    Powermemo,
    PowermemoError,
)
from powermemo_gql.client.errors import AuthenticationError, ForbiddenError, RateLimitedError
from powermemo_gql.client.ops_base import chat_message

T = TypeVar("T")

MAX_BATCH = 25  # insertBlob fields in one request; the server allows 30 aliases by default
MAX_WAITS = 8  # rate-limit or busy answers in a row for one request before giving up
MAX_WAIT_SECONDS = 60.0  # the rate limit's window: no Retry-After is longer
USAGE = 'a line is {"user": "<id>", "messages": [{"role", "content", "created_at"?}], "fields"?}'


class ImportStopped(Exception):
    """A fatal error: nothing more is sent; `message` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Chat:
    number: int  # 1-based line number in the file, blank lines counted
    user: str
    input: dict[str, Any]  # InsertBlobInput


@dataclass
class Outcome:
    stored: int = 0
    replayed: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # line number -> why
    missing_users: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def import_key(user: str, line: str, occurrence: int) -> str:
    """The idempotency key of one imported line, from what the file holds: a re-run of the
    same file stores nothing twice, while a line repeated in the file (its `occurrence`-th
    time) is still stored each time."""
    digest = hashlib.sha256(json.dumps([user, line.strip(), occurrence]).encode()).hexdigest()
    return f"import-chats:{digest}"


def read_chats(file: Path) -> tuple[list[Chat], dict[int, str], int]:
    """The file's chat records, its malformed lines (number -> why) and how many lines are
    not blank. Raises OSError or UnicodeDecodeError for a file that cannot be read."""
    chats: list[Chat] = []
    malformed: dict[int, str] = {}
    seen: dict[tuple[str, str], int] = {}
    total = 0
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            total += 1
            try:
                user, chat_input = parse_line(line)
            except ValueError as error:
                malformed[number] = str(error)
                continue
            occurrence = seen[user, line.strip()] = seen.get((user, line.strip()), 0) + 1
            chat_input["idempotencyKey"] = import_key(user, line, occurrence)
            chats.append(Chat(number, user, chat_input))
    return chats, malformed, total


def parse_line(line: str) -> tuple[str, dict[str, Any]]:
    """The user and the InsertBlobInput of one line; ValueError says what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object; {USAGE}")
    for name in ("user", "messages"):
        if name not in record:
            raise ValueError(f'missing "{name}"; {USAGE}')
    user = record["user"]
    if not isinstance(user, str) or not user.strip():
        raise ValueError('"user" must be a non-empty string (the user\'s id)')
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list of {"role", "content"} objects')
    chat = [_message(message, index) for index, message in enumerate(messages)]
    fields = record.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise ValueError('"fields" must be a JSON object')
    return user, {"userId": user, "blob": {"chat": {"messages": chat}}, "fields": fields}


def _message(message: object, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise ValueError(f'{where} must be an object with "role" and "content"')
    try:
        checked = chat_message(message, index)
    except PowermemoError as error:
        raise ValueError(f"{where}: {error.message}") from None
    said = checked["createdAt"]
    if said is not None:
        if not isinstance(said, str):
            raise ValueError(f"{where}.created_at must be a string (ISO 8601)")
        try:
            datetime.fromisoformat(said)
        except ValueError:
            raise ValueError(f"{where}.created_at is not an ISO 8601 time: {said!r}") from None
    if checked["alias"] is not None and not isinstance(checked["alias"], str):
        raise ValueError(f"{where}.alias must be a string")
    return checked


def _insert_document(size: int) -> str:
    variables = ", ".join(f"$i{k}: InsertBlobInput!" for k in range(size))
    fields = " ".join(
        f"b{k}: insertBlob(input: $i{k}) {{ __typename"
        " ... on InsertBlobPayload { replayed } ... on Error { code message } }"
        for k in range(size)
    )
    return f"mutation ImportChats({variables}) {{ {fields} }}"


def _create_document(size: int) -> str:
    variables = ", ".join(f"$u{k}: ID!" for k in range(size))
    fields = " ".join(
        f"u{k}: createUser(input: {{userId: $u{k}}}) "
        "{ __typename ... on Error { code message } }"
        for k in range(size)
    )
    return f"mutation CreateUsers({variables}) {{ {fields} }}"


class Importer:
    """Sends batches; users are split among the workers, so each user's chats keep the
    order of the file (a document's mutations run one after the other)."""

    def __init__(
        self,
        url: str,
        key: str,
        console: Console,
        *,
        batch_size: int = MAX_BATCH,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.key = key
        self.console = console
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.concurrency = max(1, concurrency)
        self._sleep = sleep
        self._stop = threading.Event()

    def call(self, send: Callable[[], T]) -> T:
        """One request, waiting out RATE_LIMITED (its Retry-After) and a busy server a
        bounded number of times; fatal errors become ImportStopped."""
        for attempt in range(MAX_WAITS + 1):
            if self._stop.is_set():
                raise ImportStopped("stopped")
            try:
                return send()
            except RateLimitedError as error:
                if error.retry_after is None and error.status is None:
                    raise  # a GraphQL-level refusal of this document, not the limit
                wait = error.retry_after if error.retry_after is not None else 2.0**attempt
                reason = "rate limited"
            except ConnectionFailedError as error:
                raise ImportStopped(f"could not reach {self.url}: {error.message}") from None
            except (AuthenticationError, ForbiddenError) as error:
                raise ImportStopped(
                    f"the server refused the API key ({error.code}: {error.message}); "
                    "check --key or POWERMEMO_API_KEY (revoked keys and deleted projects "
                    "are refused too)"
                ) from None
            except PowermemoError as error:
                if error.status is None or error.status < 500:
                    raise
                wait = min(2.0**attempt, 10.0)
                reason = f"server busy ({error.code})"
            if attempt == MAX_WAITS:
                break
            wait = min(max(wait, 0.5), MAX_WAIT_SECONDS)
            self.console.print(f"[yellow]{reason}: waiting {wait:g} s[/yellow]", highlight=False)
            self._sleep(wait)
        raise ImportStopped(f"gave up: {reason} after {MAX_WAITS} waits; run the import again")

    def create_users(self, client: Powermemo, users: Sequence[str]) -> int:
        """Creates the users that do not exist yet; returns how many were created."""
        created = 0
        for start in range(0, len(users), self.batch_size):
            batch = users[start : start + self.batch_size]
            variables = {f"u{k}": user for k, user in enumerate(batch)}
            document = _create_document(len(batch))
            data = self.call(partial(client.execute, document, variables))
            for k, user in enumerate(batch):
                result = data[f"u{k}"]
                if result["__typename"] == "CreateUserPayload":
                    created += 1
                elif result.get("code") != "ALREADY_EXISTS":
                    raise ImportStopped(f"could not create user {user!r}: {result['message']}")
        return created

    def insert(self, client: Powermemo, chats: Sequence[Chat], outcome: Outcome) -> None:
        """One batch; a request the server refuses as a whole (e.g. a value it cannot read)
        is split into single lines, so the refusal names its line."""
        variables = {f"i{k}": chat.input for k, chat in enumerate(chats)}
        document = _insert_document(len(chats))
        try:
            data: Mapping[str, Any] = self.call(partial(client.execute, document, variables))
        except ImportStopped:
            raise
        except PowermemoError as error:
            if len(chats) > 1:
                for chat in chats:
                    self.insert(client, [chat], outcome)
                return
            with outcome.lock:
                outcome.failures[chats[0].number] = f"{error.code}: {error.message}"
            return
        with outcome.lock:
            for k, chat in enumerate(chats):
                result = data[f"b{k}"]
                if result["__typename"] == "InsertBlobPayload":
                    outcome.replayed += bool(result["replayed"])
                    outcome.stored += not result["replayed"]
                elif result["__typename"] == "NotFound":
                    outcome.missing_users.setdefault(chat.user, []).append(chat.number)
                else:
                    outcome.failures[chat.number] = f"{result['code']}: {result['message']}"

    def run(self, chats: Sequence[Chat], outcome: Outcome, advance: Callable[[int], None]) -> None:
        shares: list[list[Chat]] = [[] for _ in range(self.concurrency)]
        owner: dict[str, int] = {}
        for chat in chats:
            shares[owner.setdefault(chat.user, len(owner) % self.concurrency)].append(chat)

        def work(share: list[Chat]) -> None:
            with Powermemo(self.url, self.key) as client:
                for start in range(0, len(share), self.batch_size):
                    batch = share[start : start + self.batch_size]
                    self.insert(client, batch, outcome)
                    advance(len(batch))

        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(work, share) for share in shares if share]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                self._stop.set()  # the other workers stop before their next request
                raise


def import_chats(
    url: str,
    key: str,
    args: Any,
    console: Console,
) -> int:
    """The command: 0 when every line is stored (now or by an earlier run), 1 otherwise."""
    try:
        chats, malformed, total = read_chats(args.file)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        console.print(f"[red]cannot read {args.file}: {reason}[/red]", highlight=False)
        return 2
    importer = Importer(url, key, console, batch_size=args.batch_size, concurrency=args.concurrency)
    outcome = Outcome(failures=dict(malformed))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("importing chats", total=total)
            progress.advance(task, len(malformed))
            if args.create_users:
                users = list(dict.fromkeys(chat.user for chat in chats))
                with Powermemo(url, key) as client:
                    created = importer.create_users(client, users)
                console.print(f"created {created} user(s)", highlight=False)
            importer.run(chats, outcome, lambda n: progress.advance(task, n))
            if args.flush:
                _flush(importer, chats, outcome, progress)
    except ImportStopped as stopped:
        console.print(
            f"[red]import stopped: {stopped.message}[/red]\n"
            f"{outcome.stored} chat(s) stored before it stopped; running the same command "
            "again stores nothing twice",
            highlight=False,
        )
        return 1
    return _report(outcome, total, console)


def _flush(importer: Importer, chats: Sequence[Chat], outcome: Outcome, progress: Progress) -> None:
    users = sorted({chat.user for chat in chats} - set(outcome.missing_users))
    flushing = progress.add_task("flushing users", total=len(users))
    with Powermemo(importer.url, importer.key) as client:
        for user in users:

            def flush(user: str = user) -> None:
                client.flush(user, wait=True)

            importer.call(flush)
            progress.advance(flushing)


def _report(outcome: Outcome, total: int, console: Console) -> int:
    done = outcome.stored + outcome.replayed
    console.print(
        f"imported {done} of {total} chats ({outcome.stored} new, "
        f"{outcome.replayed} already there)",
        highlight=False,
    )
    for user, numbers in outcome.missing_users.items():
        shown = ", ".join(map(str, numbers[:10])) + (", ..." if len(numbers) > 10 else "")
        console.print(
            f"[red]user {user!r} does not exist (line(s) {shown}): create it with "
            "`powermemo-gql create-user` or run again with --create-users[/red]",
            highlight=False,
        )
    for number in sorted(outcome.failures):
        console.print(f"[red]line {number}: {outcome.failures[number]}[/red]", highlight=False)
    return 0 if done == total else 1
