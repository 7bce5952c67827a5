"""`powermemo-gql` commands that talk to a running server through the Python client."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from powermemo_gql.client import FlushOutcome, Powermemo, PowermemoError

DEFAULT_URL = "http://127.0.0.1:8019"


def add_remote_commands(commands: Any) -> None:
    """Subcommands that need --url and --key (or POWERMEMO_URL / POWERMEMO_API_KEY)."""

    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--url", default=os.environ.get("POWERMEMO_URL", DEFAULT_URL), help="server URL"
        )
        parser.add_argument(
            "--key", default=os.environ.get("POWERMEMO_API_KEY"), help="project API key"
        )
        return parser

    chat = remote("chat", "add a chat to a user's buffer")
    chat.add_argument("user")
    chat.add_argument("message", help="what the user said")
    chat.add_argument("--reply", help="what the assistant answered")
    chat.add_argument("--flush", action="store_true", help="flush the buffer afterwards")

    imported = remote(
        "import-chats",
        'import a JSONL file of chats: one {"user", "messages": [{role, content, '
        "created_at}]} per line; created_at keeps when it was said",
    )
    imported.add_argument("file", type=Path)
    imported.add_argument("--flush", action="store_true", help="flush each user afterwards")

    profile = remote("profile", "show a user's profile")
    profile.add_argument("user")
    profile.add_argument("--topic", action="append", dest="topics", help="only these topics")

    context = remote("context", "print a user's context string for a prompt")
    context.add_argument("user")
    context.add_argument("--max-tokens", type=int, default=1000)

    flush = remote("flush", "flush a user's buffer now and wait for it")
    flush.add_argument("user")


REMOTE_COMMANDS = frozenset({"chat", "import-chats", "profile", "context", "flush"})


def make_console() -> Console:
    """Rich output; piped to a file or a program, wide enough not to cut ids short."""
    return Console(width=None if sys.stdout.isatty() else 200)


def run_remote(args: argparse.Namespace) -> int:
    console = make_console()
    if not args.key:
        console.print("[red]an API key is needed: --key or POWERMEMO_API_KEY[/red]")
        return 2
    try:
        with Powermemo(args.url, args.key) as client:
            return _dispatch(client, args, console)
    except PowermemoError as error:
        where = f" ({error.field})" if error.field else ""
        console.print(f"[red]{error.code}{where}: {error.message}[/red]")
        return 1


def _dispatch(client: Powermemo, args: argparse.Namespace, console: Console) -> int:
    if args.command == "chat":
        messages: list[tuple[str, str]] = [("user", args.message)]
        if args.reply:
            messages.append(("assistant", args.reply))
        blob = client.insert_chat(args.user, messages)
        console.print(f"chat stored as blob {blob.id}")
        if args.flush:
            _show_flush(client, args.user, console)
        return 0
    if args.command == "import-chats":
        return _import_chats(client, args.file, args.flush, console)
    if args.command == "profile":
        _show_profile(client, args.user, args.topics, console)
        return 0
    if args.command == "context":
        context = client.context(args.user, max_tokens=args.max_tokens)
        sys.stdout.write(context.text + "\n")
        console.print(f"[dim]{context.tokens} tokens[/dim]", highlight=False)
        return 0
    if args.command == "flush":
        _show_flush(client, args.user, console)
        return 0
    raise AssertionError(args.command)


_NO_FLUSH = {
    FlushOutcome.NOTHING_TO_FLUSH: "nothing to flush",
    FlushOutcome.BUSY: "another flush of this user is still running; try again later",
}


def _show_flush(client: Powermemo, user: str, console: Console) -> None:
    result = client.flush_buffer(user, wait=True)
    flush = result.flush
    if flush is None:
        console.print(_NO_FLUSH.get(result.outcome, result.outcome.value.lower()))
        return
    console.print(
        f"flush {flush.status.value}: {flush.item_count} item(s), {flush.llm_calls} LLM call(s), "
        f"{flush.input_tokens} + {flush.output_tokens} tokens"
        + (f" — {flush.error}" if flush.error else "")
    )


def _show_profile(client: Powermemo, user: str, topics: list[str] | None, console: Console) -> None:
    table = Table(title=f"profile of {user}")
    for column in ("topic", "sub-topic", "content", "source", "updated"):
        table.add_column(column)
    for entry in client.profile(user, topics=topics):
        table.add_row(
            entry.topic,
            entry.sub_topic,
            entry.content,
            entry.source,
            entry.updated_at.isoformat(timespec="seconds"),
        )
    console.print(table)


def import_key(user: str, line: str, occurrence: int) -> str:
    """The idempotency key of one imported line, from what the file holds: a re-run of the
    same file stores nothing twice, while a line repeated in the file (its `occurrence`-th
    time) is still stored each time."""
    digest = hashlib.sha256(json.dumps([user, line.strip(), occurrence]).encode()).hexdigest()
    return f"import-chats:{digest}"


def _import_chats(client: Powermemo, file: Path, flush: bool, console: Console) -> int:
    lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    seen: dict[tuple[str, str], int] = {}
    failures: list[str] = []
    users: set[str] = set()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("importing chats", total=len(lines))
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                user = record["user"]
                occurrence = seen[user, line.strip()] = seen.get((user, line.strip()), 0) + 1
                client.insert_chat(
                    user,
                    record["messages"],
                    fields=record.get("fields"),
                    idempotency_key=import_key(str(user), line, occurrence),
                )
                users.add(user)
            except (ValueError, KeyError, TypeError) as error:
                failures.append(f"line {number}: not a chat record ({error})")
            except PowermemoError as error:
                failures.append(f"line {number}: {error.code}: {error.message}")
            progress.advance(task)
        if flush:
            flushing = progress.add_task("flushing users", total=len(users))
            for user in sorted(users):
                client.flush(user, wait=True)
                progress.advance(flushing)
    console.print(f"imported {len(lines) - len(failures)} of {len(lines)} chats")
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    return 1 if failures else 0
