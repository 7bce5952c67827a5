from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlmodel import col

from powermemo_gql.changes.models import Change
from powermemo_gql.core.pagination import KeysetOrder, Page, PageArgs, paginate
from powermemo_gql.core.repository import Repository
from powermemo_gql.users.models import User

CHANGES_IN_ORDER: KeysetOrder[Change] = KeysetOrder(
    tag="changes",
    sort=col(Change.id),
    tiebreak=col(Change.id),
    descending=False,
    sort_value=lambda c: c.id,
    tiebreak_value=lambda c: c.id,
    parse_sort=int,
    parse_tiebreak=int,
)


class ChangeRepository(Repository[Change]):
    model = Change

    async def append(self, changes: list[Change]) -> None:
        """Add changes of one user. The user's row is locked first (PostgreSQL), so that
        ids grow in commit order per user and a reader's cursor never skips a change."""
        if not changes:
            return
        await self.session.execute(
            select(col(User.id)).where(col(User.id) == changes[0].user_id).with_for_update()
        )
        self.session.add_all(changes)
        await self.session.flush()

    async def after(self, user_id: uuid.UUID, after_id: int, limit: int) -> list[Change]:
        rows = await self.session.scalars(
            select(Change)
            .where(col(Change.user_id) == user_id, col(Change.id) > after_id)
            .order_by(col(Change.id))
            .limit(limit)
        )
        return list(rows.all())

    async def latest_id(self, user_id: uuid.UUID) -> int:
        latest = await self.session.scalar(
            select(func.max(col(Change.id))).where(col(Change.user_id) == user_id)
        )
        return int(latest or 0)

    async def list_for_user(self, user_id: uuid.UUID, args: PageArgs) -> Page[Change]:
        stmt = select(Change).where(col(Change.user_id) == user_id)
        return await paginate(self.session, stmt, CHANGES_IN_ORDER, args)
