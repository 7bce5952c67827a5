"""importProfile: facts from free text merged into the profile, like a flush's, at once."""

from __future__ import annotations

import asyncio
import uuid

from powermemo_gql.buffers.models import Flush, FlushStatus, FlushTrigger
from powermemo_gql.changes.models import ChangeKind
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.deps import MemoryDeps
from powermemo_gql.memory.parsing import Usage
from powermemo_gql.memory.pipeline import CurrentEntry, MemoryPipeline
from powermemo_gql.memory.steps import instructions_for
from powermemo_gql.memory.writes import ChangeOrigin, apply_changes, finish_flush, record_steps
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.profiles.models import ProfileEntry, ProfileSource
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.profiles.service import MAX_IMPORT_CHARS, checked_text
from powermemo_gql.projects.repository import ProjectRepository
from powermemo_gql.users.repository import UserRepository


class ProfileImporter:
    def __init__(self, deps: MemoryDeps) -> None:
        self._sessions = deps.sessions
        self._clock = deps.clock
        self._feed = deps.feed
        self._settings = deps.settings
        self._pipeline = MemoryPipeline.from_settings(deps.llm, deps.settings)

    async def import_profile(
        self, project_id: uuid.UUID, user_id: uuid.UUID, text: str
    ) -> tuple[list[ProfileEntry], Usage]:
        """Facts from free text merged into the profile (source: import), in one transaction.
        Returns the entries written and the LLM usage; raises LLMUnavailable."""
        text = checked_text(text, "text", MAX_IMPORT_CHARS)
        usage = Usage()
        async with unit_of_work(self._sessions) as session:
            profile = await ProfileRepository(session).list_for_user(user_id)
            project = await ProjectRepository(session).get(project_id)
        config = ProfileConfig.from_stored(project.profile_config if project else {})
        instructions = instructions_for(config, self._settings)
        limit = self._settings.flush_timeout_seconds
        # Recorded as a flush without buffer items, so that its LLM usage is counted.
        import_flush = Flush(
            project_id=project_id,
            user_id=user_id,
            trigger=FlushTrigger.IMPORT.value,
            started_at=self._clock.now(),
        )

        try:
            async with asyncio.timeout(limit):
                result = await self._pipeline.changes_from(
                    text,
                    [CurrentEntry(e.id, e.topic, e.sub_topic, e.content) for e in profile],
                    config,
                    instructions,
                    usage,
                )
        except (LLMUnavailable, TimeoutError) as exc:
            failure = (
                exc
                if isinstance(exc, LLMUnavailable)
                else LLMUnavailable(f"import timed out after {limit:g} s")
            )
            await self._record_failure(import_flush, usage, failure.message)
            raise failure from exc
        async with unit_of_work(self._sessions) as session:
            await UserRepository(session).lock(user_id)  # first: one lock order per user
            now = self._clock.now()
            finish_flush(import_flush, FlushStatus.DONE, usage, now)
            session.add(import_flush)
            await session.flush()  # the step usage below refers to it
            await record_steps(session, import_flush, usage)
            written = await apply_changes(
                session,
                project_id,
                user_id,
                result.changes,
                ChangeOrigin(
                    source=ProfileSource.IMPORT,
                    blob_ids=[],
                    event_id=None,
                    flush_id=import_flush.id,
                    now=now,
                ),
            )
            keys = {
                (c.topic, c.sub_topic) for c in written if c.kind != ChangeKind.ENTRY_DELETED.value
            }
            entries = [
                e
                for e in await ProfileRepository(session).list_for_user(user_id)
                if (e.topic, e.sub_topic) in keys
            ]
        await self._feed.notify(user_id)
        return entries, usage

    async def _record_failure(self, flush: Flush, usage: Usage, error: str) -> None:
        finish_flush(flush, FlushStatus.FAILED, usage, self._clock.now(), error)
        async with unit_of_work(self._sessions) as session:
            session.add(flush)
            await session.flush()
            await record_steps(session, flush, usage)
