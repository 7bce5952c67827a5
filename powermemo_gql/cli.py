"""The `powermemo-gql` command: serve, migrate, export-schema, and operator tasks."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from powermemo_gql.cli_database import DatabaseTrouble, report, run_on_database
from powermemo_gql.cli_remote import (
    REMOTE_COMMANDS,
    add_remote_commands,
    make_console,
    run_remote,
)
from powermemo_gql.cli_serve import run_worker, serve
from powermemo_gql.core import migrations
from powermemo_gql.core.clock import SystemClock
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.global_ids import global_id, split_global_id
from powermemo_gql.core.pagination import MAX_PAGE_SIZE, PageArgs
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import DomainError, InvalidInput
from powermemo_gql.observability.logs import configure_logging
from powermemo_gql.projects.service import ProjectService
from powermemo_gql.settings import Settings, SettingsError, describe_error, load_settings

logger = logging.getLogger("powermemo_gql")


CONFIG_HELP = "config file (default: $POWERMEMO_CONFIG or ./config.yaml)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powermemo-gql", description=__doc__)
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    # Every subcommand takes --config too (before or after its name); SUPPRESS keeps the
    # top-level value when the subcommand's is not given.
    with_config = argparse.ArgumentParser(add_help=False)
    with_config.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=CONFIG_HELP)
    commands = _Commands(parser.add_subparsers(dest="command", required=True), with_config)

    serve = commands.add_parser("serve", help="run the GraphQL server")
    serve.add_argument("--host", help="overrides the host setting")
    serve.add_argument("--port", type=int, help="overrides the port setting")

    commands.add_parser(
        "worker",
        help="run flushes (size and idle triggers, recovery) and the recall indexer's "
        "catch-up, for API instances that set background_flushes: false",
    )

    commands.add_parser("migrate", help="apply pending database migrations")

    mcp = commands.add_parser(
        "mcp",
        help="the MCP server over stdio, for a local agent (on the configured database; "
        "docs/mcp.md)",
    )
    mcp.add_argument(
        "--key",
        default=os.environ.get("POWERMEMO_API_KEY"),
        help="the project's API key (default: $POWERMEMO_API_KEY)",
    )

    reindex = commands.add_parser(
        "reindex",
        help="embed every profile entry, event and fact whose vector is missing or was made "
        "by another model (resumable; safe beside a running server)",
    )
    reindex.add_argument("--project", help="only this project (id or name)")
    reindex.add_argument(
        "--missing-only",
        action="store_true",
        help="only rows without any vector (keep vectors of other models)",
    )

    commands.add_parser(
        "config-reference", help="print the table of settings in docs/configuration.md"
    )
    commands.add_parser("projects", help="list projects (operators, on the database)")
    keys = commands.add_parser("api-keys", help="list a project's API keys")
    keys.add_argument("project", help="project id or name")
    revoke = commands.add_parser("revoke-api-key", help="revoke an API key at once")
    revoke.add_argument("key_id")
    add_remote_commands(commands)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")

    create_project = commands.add_parser("create-project", help="create a project")
    create_project.add_argument("name")

    create_key = commands.add_parser(
        "create-api-key", help="issue an API key for a project (printed once)"
    )
    create_key.add_argument("project", help="project id or name")
    create_key.add_argument("--name", default="default", help="a label for the key")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C is an answer, not a crash
        print("powermemo-gql: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        return _export_schema(args.output)
    if args.command in REMOTE_COMMANDS:
        return run_remote(args)
    if args.command == "config-reference":
        from powermemo_gql.settings.reference import reference_markdown

        print(reference_markdown())
        return 0
    try:
        overrides = {}
        if args.command == "serve":
            overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
        settings = load_settings(args.config, **overrides)
    except (SettingsError, ValidationError) as exc:
        print(f"powermemo-gql: configuration error: {describe_error(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_lines=settings.is_production)
    if args.command == "serve":
        return serve(settings)
    if args.command == "worker":
        return asyncio.run(run_worker(settings))
    if args.command == "mcp":
        from powermemo_gql.mcp.stdio import run_stdio

        return asyncio.run(run_stdio(settings, args.key))
    try:
        return _on_database(settings, args)
    except DatabaseTrouble as trouble:
        return report(trouble)


def _on_database(settings: Settings, args: argparse.Namespace) -> int:
    """The operator commands that work on the database itself."""
    if args.command == "migrate":
        run_on_database(migrations.upgrade_database(settings))
        print("database is at the newest migration")
        return 0
    if args.command == "reindex":
        from powermemo_gql.cli_reindex import run_reindex

        return run_on_database(run_reindex(settings, args.project, args.missing_only))
    if args.command == "create-project":
        return run_on_database(_create_project(settings, args.name))
    if args.command == "create-api-key":
        return run_on_database(_create_api_key(settings, args.project, args.name))
    if args.command in ("projects", "api-keys", "revoke-api-key"):
        return run_on_database(_operator(settings, args))
    raise AssertionError(args.command)  # argparse only allows the commands above


def _export_schema(output: Path | None) -> int:
    from powermemo_gql.graphql.schema import schema_sdl

    sdl = schema_sdl()
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl, encoding="utf-8")
    return 0


async def _create_project(settings: Settings, name: str) -> int:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            # No server resources here, so no injected clock: the system's.
            project = await ProjectService(session).create_project(name, now=SystemClock().now())
    except DomainError as exc:
        print(f"powermemo-gql: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(global_id("Project", project.id))
    return 0


async def _create_api_key(settings: Settings, project: str, name: str) -> int:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            service = ProjectService(session)
            found = await service.find_project(_raw(project, "Project"))
            issued = await service.create_api_key(str(found.id), name, now=SystemClock().now())
    except DomainError as exc:
        print(f"powermemo-gql: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(issued.secret)
    return 0


def _raw(value: str, type_name: str) -> str:
    """The raw id in a global id of `type_name` (as the API and these commands show ids);
    anything else as typed: a raw id, or a project's name."""
    try:
        found_type, raw = split_global_id(value, "id")
    except InvalidInput:
        return value
    return raw if found_type == type_name else value


async def _operator(settings: Settings, args: argparse.Namespace) -> int:
    """Listing projects and keys, revoking keys: straight on the database, as an operator."""
    from rich.table import Table

    console = make_console()
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            service = ProjectService(session)
            if args.command == "projects":
                table = Table("id", "name", "created")
                page = await service.list_projects(PageArgs(first=MAX_PAGE_SIZE))
                for project in page.items:
                    table.add_row(
                        global_id("Project", project.id),
                        project.name,
                        project.created_at.isoformat(),
                    )
            elif args.command == "api-keys":
                found = await service.find_project(_raw(args.project, "Project"))
                table = Table("id", "name", "prefix", "created", "revoked")
                for key in await service.list_api_keys(found.id):
                    revoked = key.revoked_at.isoformat() if key.revoked_at else ""
                    table.add_row(
                        global_id("ApiKey", key.id),
                        key.name,
                        key.prefix,
                        key.created_at.isoformat(),
                        revoked,
                    )
            else:
                # No server resources here, so no injected clock: the system's.
                key = await service.revoke_api_key(
                    _raw(args.key_id, "ApiKey"), now=SystemClock().now()
                )
        if args.command == "revoke-api-key":  # committed: servers close its websockets
            await _announce_revocation(settings, key.id)
            console.print(f"revoked {global_id('ApiKey', key.id)} ({key.name}, {key.prefix}...)")
            return 0
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        return 1
    finally:
        await engine.dispose()
    console.print(table)
    return 0


class _Commands:
    """The subparsers action, adding the shared options to every subcommand."""

    def __init__(self, action: Any, parent: argparse.ArgumentParser) -> None:
        self._action = action
        self._parent = parent

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._action.add_parser(
            name, parents=[self._parent], **kwargs
        )
        return parser


async def _announce_revocation(settings: Settings, key_id: uuid.UUID) -> None:
    """Through Redis, when set; without it, servers find out at their next periodic check."""
    from powermemo_gql.core.pubsub import create_pubsub
    from powermemo_gql.projects.revocation import Revocation, announce

    pubsub = create_pubsub(settings.redis_url)
    try:
        await announce(pubsub, Revocation.of_keys([key_id]))
    finally:
        await pubsub.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
