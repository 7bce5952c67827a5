"""`powermemo-gql` commands that talk to a running server through the Python client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from powermemo_gql.cli_import import MAX_BATCH, import_chats
from powermemo_gql.client import ConnectionFailedError, FlushOutcome, Powermemo, PowermemoError
from powermemo_gql.settings import SettingsError, describe_error, load_settings


def add_remote_commands(commands: Any) -> None:
    """Subcommands that need --url and --key (or POWERMEMO_URL / POWERMEMO_API_KEY)."""

    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--url",
            help="server URL (default: $POWERMEMO_URL, else the configured host and port)",
        )
        parser.add_argument(
            "--key", default=os.environ.get("POWERMEMO_API_KEY"), help="project API key"
        )
        return parser

    created = remote("create-user", "create a user (an id of your own, or one generated)")
    created.add_argument("user", nargs="?", help="the user's id (default: generated)")
    created.add_argument("--data", help="the user's data, a JSON object")

    listed = remote("users", "list the project's users")
    listed.add_argument("--search", help="only ids holding this (case-insensitive)")
    listed.add_argument("--first", type=int, default=100, help="how many (at most 100)")

    deleted = remote("delete-user", "delete a user and all their memory")
    deleted.add_argument("user")

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
    imported.add_argument(
        "--create-users", action="store_true", help="create the users that do not exist yet"
    )
    imported.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH,
        help=f"chats sent in one request (1-{MAX_BATCH})",
    )
    imported.add_argument("--concurrency", type=int, default=4, help="requests in flight")

    profile = remote("profile", "show a user's profile")
    profile.add_argument("user")
    profile.add_argument("--topic", action="append", dest="topics", help="only these topics")

    events = remote("events", "show a user's events, by when they happened, newest first")
    events.add_argument("user")
    events.add_argument("--first", type=int, default=20, help="how many (at most 100)")
    events.add_argument("--search", help="only events holding every word")

    search = remote("search", "search a user's memory by meaning and words")
    search.add_argument("user")
    search.add_argument("query")
    search.add_argument("--first", type=int, default=10, help="how many hits (at most 100)")
    search.add_argument(
        "--mode", choices=["hybrid", "keyword", "vector"], default="hybrid", help="how to rank"
    )

    context = remote("context", "print a user's context string for a prompt")
    context.add_argument("--query", help="what the turn is about: relevant memory comes first")
    context.add_argument("user")
    context.add_argument("--max-tokens", type=int, default=1000)

    flush = remote("flush", "flush a user's buffer now and wait for it")
    flush.add_argument("user")


REMOTE_COMMANDS = frozenset(
    {
        "chat",
        "import-chats",
        "profile",
        "events",
        "context",
        "flush",
        "create-user",
        "users",
        "delete-user",
        "search",
    }
)


def make_console() -> Console:
    """Rich output; piped to a file or a program, wide enough not to cut ids short."""
    return Console(width=None if sys.stdout.isatty() else 200)


def server_url(explicit: str | None, config: Path | None) -> str:
    """--url, else $POWERMEMO_URL, else the configured host and port; checked."""
    url = explicit or os.environ.get("POWERMEMO_URL")
    if not url:
        settings = load_settings(config)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104  (reading, not binding)
        url = f"http://{host}:{settings.port}"
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"the server URL must start with http:// or https:// (got {url!r})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError as error:
        raise SettingsError(f"the server URL {url!r} is not a valid URL ({error})") from None
    if not parts.hostname:
        raise SettingsError(f"the server URL {url!r} names no host")
    return url.rstrip("/")


def run_remote(args: argparse.Namespace) -> int:
    console = make_console()
    if not args.key:
        console.print("[red]an API key is needed: --key or POWERMEMO_API_KEY[/red]")
        return 2
    try:
        url = server_url(args.url, args.config)
    except (SettingsError, ValidationError) as error:
        console.print(f"[red]powermemo-gql: {describe_error(error)}[/red]", highlight=False)
        return 2
    if args.command == "import-chats":
        return import_chats(url, args.key, args, console)
    try:
        with Powermemo(url, args.key) as client:
            return _dispatch(client, args, console)
    except ConnectionFailedError as error:
        console.print(f"[red]could not reach {url}: {error.message}[/red]", highlight=False)
        return 1
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
    if args.command == "profile":
        _show_profile(client, args.user, args.topics, console)
        return 0
    if args.command in ("create-user", "users", "delete-user"):
        return _users(client, args, console)
    if args.command == "search":
        _show_search(client, args, console)
        return 0
    if args.command == "events":
        _show_events(client, args.user, args.first, args.search, console)
        return 0
    if args.command == "context":
        context = client.context(args.user, max_tokens=args.max_tokens, query=args.query)
        sys.stdout.write(context.text + "\n")
        console.print(f"[dim]{context.tokens} tokens[/dim]", highlight=False)
        return 0
    if args.command == "flush":
        _show_flush(client, args.user, console)
        return 0
    raise AssertionError(args.command)


def _users(client: Powermemo, args: argparse.Namespace, console: Console) -> int:
    if args.command == "create-user":
        try:
            data = json.loads(args.data) if args.data else None
        except ValueError as error:
            console.print(f"[red]--data is not JSON: {error}[/red]", highlight=False)
            return 2
        if data is not None and not isinstance(data, dict):
            console.print("[red]--data must be a JSON object[/red]")
            return 2
        console.print(client.create_user(args.user, data).id, highlight=False)
        return 0
    if args.command == "delete-user":
        client.delete_user(args.user)
        console.print(f"deleted {args.user}", highlight=False)
        return 0
    users, _next = client.users(first=args.first, search=args.search)
    table = Table("id", "data", "created")
    for user in users:
        table.add_row(user.id, json.dumps(user.data), user.created_at.isoformat(timespec="seconds"))
    console.print(table)
    return 0


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
    for column in ("topic", "sub-topic", "content", "source", "updated", "last mentioned"):
        table.add_column(column)
    for entry in client.profile(user, topics=topics):
        mentioned = entry.last_mentioned_at
        table.add_row(
            entry.topic,
            entry.sub_topic,
            entry.content,
            entry.source,
            entry.updated_at.isoformat(timespec="seconds"),
            mentioned.isoformat(timespec="seconds") if mentioned else "",
        )
    console.print(table)


def _show_search(client: Powermemo, args: argparse.Namespace, console: Console) -> None:
    found = client.search(args.user, args.query, args.first, mode=args.mode)
    table = Table("score", "kind", "what", "vector rank", "keyword rank")
    for hit in found.hits:
        where = f"{hit.entry.topic}::{hit.entry.sub_topic}: " if hit.entry else ""
        table.add_row(
            f"{hit.score:.4f}",
            hit.kind.lower(),
            where + hit.text,
            str(hit.vector_rank or ""),
            str(hit.keyword_rank or ""),
        )
    console.print(table)
    if found.reason:
        console.print(f"[dim]{found.mode.lower()} search: {found.reason}[/dim]", highlight=False)


def _show_events(
    client: Powermemo, user: str, first: int, search: str | None, console: Console
) -> None:
    table = Table(title=f"events of {user}")
    for column in ("happened", "summary", "tags"):
        table.add_column(column)
    for event in client.events(user, first=first, search=search):
        start, end = event.happened_from.date(), event.happened_to.date()
        table.add_row(
            start.isoformat() + (f" .. {end.isoformat()}" if end > start else ""),
            event.summary,
            ", ".join(f"{t.tag}: {t.value}" for t in event.tags),
        )
    console.print(table)
