"""Use cases that span features: a write through the feature services, plus what must follow
it once it is durable (a flush scheduled, followers told, a revoked key forgotten everywhere).

Those effects are registered on the unit of work (core/uow.after_commit): they run after its
commit and never after a rollback. Resolvers and MCP tools call these methods inside their
unit of work, so none of them schedules or notifies anything itself. (The CLI's
`revoke-api-key`, which has no server resources, announces its revocation after its own
commit: cli.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.blobs.service import BlobService, Inserted
from powermemo_gql.core.uow import after_commit
from powermemo_gql.errors import NotFound
from powermemo_gql.events.models import Event
from powermemo_gql.events.service import EventService
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.profiles.service import ProfileService
from powermemo_gql.projects.models import ApiKey
from powermemo_gql.projects.revocation import Revocation, announce
from powermemo_gql.projects.service import ProjectService
from powermemo_gql.users.service import UserService

if TYPE_CHECKING:
    from powermemo_gql.resources import Resources


class UseCases:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources

    async def insert_blob(
        self,
        project_id: uuid.UUID,
        user_id: str,
        kind: BlobType,
        content: dict[str, Any],
        fields: Any = None,
        idempotency_key: str | None = None,
    ) -> Inserted:
        """Store a blob; once committed, a buffer now over its limit starts a flush."""
        inserted = await BlobService(self.session).insert(
            project_id,
            user_id,
            kind,
            content,
            fields,
            idempotency_key,
            now=self.resources.clock.now(),
        )
        if not inserted.replayed:
            blob = inserted.blob
            check = partial(
                self.resources.flusher.after_insert,
                blob.project_id,
                blob.user_id,
                inserted.idle_tokens,
            )
            after_commit(self.session, check)
        return inserted

    async def add_profile_entry(
        self, project_id: uuid.UUID, user_id: str, topic: str, sub_topic: str, content: str
    ) -> ProfileEntry:
        user = await UserService(self.session).get(project_id, user_id)
        entry = await ProfileService(self.session).add(
            user, topic, sub_topic, content, now=self.resources.clock.now()
        )
        self._notify(entry.user_id)
        return entry

    async def update_profile_entry(
        self, project_id: uuid.UUID, entry_id: str, content: str
    ) -> ProfileEntry:
        entry = await ProfileService(self.session).update(
            project_id, entry_id, content, now=self.resources.clock.now()
        )
        self._notify(entry.user_id)
        return entry

    async def delete_profile_entry(
        self, project_id: uuid.UUID, entry_id: str, of_user: uuid.UUID | None = None
    ) -> ProfileEntry:
        """`of_user`: only that user's entry (another user's is not found)."""
        profiles = ProfileService(self.session)
        if of_user is not None and (await profiles.get(project_id, entry_id)).user_id != of_user:
            raise NotFound("ProfileEntry", entry_id)
        entry = await profiles.delete(project_id, entry_id, now=self.resources.clock.now())
        self._notify(entry.user_id)
        return entry

    async def update_event(
        self,
        project_id: uuid.UUID,
        event_id: str,
        summary: str | None,
        tags: Sequence[tuple[str, str]] | None,
    ) -> Event:
        event = await EventService(self.session).update(
            project_id, event_id, summary, tags, now=self.resources.clock.now()
        )
        self._notify(event.user_id)
        return event

    async def delete_event(self, project_id: uuid.UUID, event_id: str) -> Event:
        event = await EventService(self.session).delete(
            project_id, event_id, now=self.resources.clock.now()
        )
        self._notify(event.user_id)
        return event

    async def revoke_api_key(self, key_id: str) -> ApiKey:
        """Once committed, this instance forgets the key, and every instance (told through
        the broker) forgets it too and closes the websockets it opened."""
        key = await ProjectService(self.session).revoke_api_key(
            key_id, now=self.resources.clock.now()
        )
        revocation = Revocation.of_keys([key.id])
        resources = self.resources

        async def forget_everywhere() -> None:
            resources.key_cache.forget(revocation)
            await announce(resources.pubsub, revocation)

        after_commit(self.session, forget_everywhere)
        return key

    def _notify(self, user_id: uuid.UUID) -> None:
        """The user's followers, once the change record written with the change commits."""
        after_commit(self.session, partial(self.resources.feed.notify, user_id))
