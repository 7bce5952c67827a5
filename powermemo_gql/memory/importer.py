"""importProfile: facts from free text merged into the profile, like a flush's, at once."""

from __future__ import annotations

import asyncio
import uuid

from powermemo_gql.buffers.models import Flush, FlushStatus, FlushTrigger
from powermemo_gql.changes.feed import Feed
from powermemo_gql.changes.models import ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import LLMClient
from powermemo_gql.memory.flush import PARSE_ATTEMPTS, finish_flush, pipeline_limits
from powermemo_gql.memory.parsing import Usage
from powermemo_gql.memory.pipeline import CurrentEntry, MemoryPipeline
from powermemo_gql.memory.prompts import prompts_for
from powermemo_gql.memory.writes import apply_change
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.profiles.models import ProfileEntry, ProfileSource
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.profiles.service import MAX_IMPORT_CHARS, checked_text
from powermemo_gql.projects.repository import ProjectRepository
from powermemo_gql.settings import Settings
from powermemo_gql.users.repository import UserRepository


class ProfileImporter:
    def __init__(
        self, sessions: SessionFactory, llm: LLMClient, feed: Feed, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._feed = feed
        self._settings = settings
        self._pipeline = MemoryPipeline(
            llm, attempts=PARSE_ATTEMPTS, limits=pipeline_limits(settings)
        )

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
        prompts = prompts_for(config.language or self._settings.language)
        language_rule = (
            prompts.keep_language if self._settings.keep_input_language else prompts.output_language
        )
        limit = self._settings.flush_timeout_seconds
        # Recorded as a flush without buffer items, so that its LLM usage is counted.
        import_flush = Flush(
            project_id=project_id, user_id=user_id, trigger=FlushTrigger.IMPORT.value
        )

        try:
            async with asyncio.timeout(limit):
                changes = await self._pipeline.changes_from(
                    text,
                    [CurrentEntry(e.id, e.topic, e.sub_topic, e.content) for e in profile],
                    config,
                    prompts,
                    language_rule,
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
            profiles = ProfileRepository(session)
            written = [
                record
                for c in changes
                if (
                    record := await apply_change(
                        profiles,
                        project_id,
                        user_id,
                        c,
                        source=ProfileSource.IMPORT,
                        blob_ids=[],
                        event_id=None,
                        flush_id=import_flush.id,
                    )
                )
                is not None
            ]
            await ChangeRepository(session).append(written)
            keys = {
                (c.topic, c.sub_topic) for c in written if c.kind != ChangeKind.ENTRY_DELETED.value
            }
            entries = [
                e for e in await profiles.list_for_user(user_id) if (e.topic, e.sub_topic) in keys
            ]
            finish_flush(import_flush, FlushStatus.DONE, usage)
            session.add(import_flush)
        await self._feed.notify(user_id)
        return entries, usage

    async def _record_failure(self, flush: Flush, usage: Usage, error: str) -> None:
        finish_flush(flush, FlushStatus.FAILED, usage, error)
        async with unit_of_work(self._sessions) as session:
            session.add(flush)
