"""Live delivery of the change feed: the database is the record, pub/sub only says "look".

A follower subscribes first, then reads the feed from its cursor, then reads again on
every notification. A lost notification delays a change until the next one; a broken
broker ends the stream, and the client resumes with `since`, missing nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from powermemo_gql.changes.models import Change
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.pubsub import PubSub
from powermemo_gql.core.uow import unit_of_work

BATCH = 100

logger = logging.getLogger(__name__)


def channel(user_id: uuid.UUID) -> str:
    return f"powermemo:changes:{user_id}"


class Feed:
    def __init__(self, sessions: SessionFactory, pubsub: PubSub) -> None:
        self._sessions = sessions
        self._pubsub = pubsub

    async def notify(self, user_id: uuid.UUID) -> None:
        """Tell followers of this user that the feed grew (after the commit that grew it).

        Never raises: the change is committed already, and a follower that missed this
        notification reads it at the next one or when it resumes with its cursor.
        """
        try:
            await self._pubsub.publish(channel(user_id), {"user": str(user_id)})
        except Exception:
            logger.warning("could not notify followers of user %s", user_id, exc_info=True)

    async def latest(self, user_id: uuid.UUID) -> int:
        async with unit_of_work(self._sessions) as session:
            return await ChangeRepository(session).latest_id(user_id)

    async def follow(self, user_id: uuid.UUID, after_id: int) -> AsyncIterator[Change]:
        """Every change after `after_id`, in order, then each new one as it is committed."""
        async with self._pubsub.listen(channel(user_id)) as notifications:
            last = after_id
            async for change in self._read(user_id, last):
                last = change.id or last
                yield change
            async for _ in notifications:
                async for change in self._read(user_id, last):
                    last = change.id or last
                    yield change

    async def _read(self, user_id: uuid.UUID, after_id: int) -> AsyncIterator[Change]:
        while True:
            async with unit_of_work(self._sessions) as session:
                batch = await ChangeRepository(session).after(user_id, after_id, BATCH)
            for change in batch:
                yield change
            if len(batch) < BATCH:
                return
            after_id = batch[-1].id or after_id
