from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlmodel import col

from powermemo_gql.changes.models import Change
from powermemo_gql.core.pagination import (
    KeysetOrder,
    Page,
    PageArgs,
    first_pages,
    id_key,
    paginate,
)
from powermemo_gql.core.repository import Repository
from powermemo_gql.users.models import User

CHANGES_IN_ORDER: KeysetOrder[Change] = KeysetOrder(
    # "seq": cursors of the global ids once issued are refused, not misread as a position.
    tag="changes:seq",
    sort=col(Change.seq),
    tiebreak=col(Change.seq),
    descending=False,
    sort_value=lambda c: c.seq,
    tiebreak_value=lambda c: c.seq,
    parse_sort=id_key,
    parse_tiebreak=id_key,
)


class ChangeRepository(Repository[Change]):
    model = Change

    async def append(self, changes: list[Change]) -> None:
        """Add changes of one user, numbered on from the user's latest seq. The counter is
        advanced in the user's row, in one statement: that locks the row (PostgreSQL) or the
        database (SQLite) until commit, so seqs grow in commit order per user and a reader's
        cursor never skips a change."""
        if not changes:
            return
        last = await self.session.scalar(
            update(User)
            .where(col(User.id) == changes[0].user_id)
            .values(change_seq=col(User.change_seq) + len(changes))
            .returning(col(User.change_seq))
            .execution_options(synchronize_session=False)
        )
        if last is None:
            raise LookupError(f"user {changes[0].user_id} does not exist")
        first = last - len(changes) + 1
        for offset, change in enumerate(changes):
            change.seq = first + offset
        self.session.add_all(changes)
        await self.session.flush()

    async def after(self, user_id: uuid.UUID, after_seq: int, limit: int) -> list[Change]:
        rows = await self.session.scalars(
            select(Change)
            .where(col(Change.user_id) == user_id, col(Change.seq) > after_seq)
            .order_by(col(Change.seq))
            .limit(limit)
        )
        return list(rows.all())

    async def latest_seq(self, user_id: uuid.UUID) -> int:
        latest = await self.session.scalar(
            select(func.max(col(Change.seq))).where(col(Change.user_id) == user_id)
        )
        return int(latest or 0)

    async def counters(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Each user's latest change seq, from the counter in its row (by primary key)."""
        rows = await self.session.execute(
            select(col(User.id), col(User.change_seq)).where(col(User.id).in_(user_ids))
        )
        return {user_id: int(seq or 0) for user_id, seq in rows.all()}

    async def list_for_user(self, user_id: uuid.UUID, args: PageArgs) -> Page[Change]:
        stmt = select(Change).where(col(Change.user_id) == user_id)
        return await paginate(self.session, stmt, CHANGES_IN_ORDER, args)

    async def first_pages_for_users(
        self, user_ids: Sequence[uuid.UUID], size: int
    ) -> dict[uuid.UUID, Page[Change]]:
        stmt = select(Change).where(col(Change.user_id).in_(user_ids))
        user = col(Change.user_id)
        return await first_pages(self.session, Change, stmt, user, CHANGES_IN_ORDER, size, user_ids)
