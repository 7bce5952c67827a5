"""`powermemo-gql reindex`: embed what is missing or was made by another model."""

from __future__ import annotations

import sys
from typing import TextIO

from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import DomainError, EmbeddingUnavailable
from powermemo_gql.projects.service import ProjectService
from powermemo_gql.recall.embeddings import Embedder, create_embedder
from powermemo_gql.recall.reindex import Reindexer
from powermemo_gql.settings import Settings, SettingsError


class ProgressLine:
    """A tqdm-like "reindex: 123/456" on one line of a terminal, redrawn in place; one line
    per update elsewhere (a log keeps every step)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        share = f" ({100 * done // total}%)" if total else ""
        line = f"reindex: {done}/{total}{share}"
        self._stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self._stream.flush()
        self._drawn = True

    def end(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\n")


async def run_reindex(
    settings: Settings,
    project: str | None,
    missing_only: bool,
    *,
    embedder: Embedder | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The command's exit status; `embedder`: a test's own instead of the configured one."""
    err = stderr or sys.stderr
    try:
        embedder = embedder or create_embedder(settings)
    except SettingsError as exc:
        print(f"powermemo-gql: configuration error: {exc}", file=err)
        return 2
    if not embedder.enabled:
        print("powermemo-gql: nothing to embed: embedding_provider is none", file=err)
        return 1
    engine = create_engine(settings)
    progress = ProgressLine(err)
    try:
        sessions = create_session_factory(engine)
        project_id = None
        if project is not None:
            async with unit_of_work(sessions) as session:
                project_id = (await ProjectService(session).find_project(project)).id
        report = await Reindexer(sessions, embedder).run(project_id, missing_only, progress)
    except DomainError as exc:  # an unknown project; the provider down after its retries
        progress.end()
        kept = isinstance(exc, EmbeddingUnavailable)
        hint = "; what was embedded is kept: run reindex again to continue" if kept else ""
        print(f"powermemo-gql: {exc.message}{hint}", file=err)
        return 1
    finally:
        await embedder.close()
        await engine.dispose()
    progress.end()
    summary = f"reindex: {report.embedded} embedded with {embedder.model}"
    if report.resized:
        summary += f" ({report.resized} had vectors of another length)"
    if report.changed:
        summary += f"; {report.changed} changed meanwhile (the server embeds their new text)"
    print(summary, file=err)
    return 0
