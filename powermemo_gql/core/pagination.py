"""Relay-style keyset pagination: cursors name a row's sort key and id, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Select, Subquery, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from powermemo_gql.core.validation import text_problem
from powermemo_gql.errors import InvalidInput

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Our cursors stay far below this (a tag, an ISO datetime or a 128-character user id, a UUID).
MAX_CURSOR_CHARS = 1024
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
# Ids are BIGINT on PostgreSQL: a larger number could not even be compared.
MAX_ID = 2**63 - 1
# The label of first_pages' row number within its parent.
_POSITION = "position"


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


@dataclass(frozen=True)
class KeysetOrder(Generic[T]):
    """How one listing is ordered: by `sort` ascending or descending, ties broken by `tiebreak`."""

    tag: str  # identifies the ordering inside cursors, so a cursor can't be reused across orders
    # Mapped columns (Any: SQLModel's col() and plain columns type differently).
    sort: Any
    tiebreak: Any
    descending: bool
    sort_value: Callable[[T], Any]
    tiebreak_value: Callable[[T], Any]
    parse_sort: Callable[[str], Any]
    parse_tiebreak: Callable[[str], Any]


class _Timestamped(Protocol):
    id: uuid.UUID
    created_at: datetime


R = TypeVar("R", bound=_Timestamped)


def by_creation(model: type[R], tag: str, descending: bool = False) -> KeysetOrder[R]:
    """The usual listing order: by created_at, ties broken by the UUID primary key."""
    return by_time(model, "created_at", tag, descending)


def by_time(model: type[R], column: str, tag: str, descending: bool = False) -> KeysetOrder[R]:
    """By one of the model's datetime columns, ties broken by the UUID primary key. Its keys
    are read by attribute name: it orders records with the model's field names too."""
    return KeysetOrder(
        tag=tag,
        sort=getattr(model, column),
        tiebreak=model.id,
        descending=descending,
        sort_value=lambda row: getattr(row, column),
        tiebreak_value=lambda row: row.id,
        parse_sort=datetime_key,
        parse_tiebreak=uuid.UUID,
    )


def datetime_key(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:  # cursors we issue are UTC; a naive one was made by hand
        raise ValueError("cursor datetime has no time zone")
    # In UTC, as stored: a date at the edge of the calendar with an offset overflows here
    # (OverflowError), not later in the driver.
    return value.astimezone(UTC)


def id_key(raw: str) -> int:
    """A database id or sequence number (what change cursors carry): 0 or more, within BIGINT."""
    if not raw.isascii() or not raw.isdigit():
        raise ValueError("cursor id is not a number")
    value = int(raw)
    if value > MAX_ID:
        raise ValueError("cursor id is out of range")
    return value


def text_key(raw: str) -> str:
    """A text sort key, refused when no database could compare it (NUL, lone surrogates)."""
    if (problem := text_problem(raw)) is not None:
        raise ValueError(problem)
    return raw


def _format(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def encode_cursor(tag: str, sort: Any, tiebreak: Any) -> str:
    raw = json.dumps([tag, _format(sort), _format(tiebreak)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor(order: KeysetOrder[T], item: T) -> str:
    """The cursor of one listed item."""
    return encode_cursor(order.tag, order.sort_value(item), order.tiebreak_value(item))


def _cursor_parts(raw: str) -> list[str] | None:
    """The three strings inside a cursor, or None when it is not shaped like ours. Checked
    before decoding: bounded, base64url only, so nothing odd reaches the JSON parser."""
    if len(raw) > MAX_CURSOR_CHARS or not _CURSOR_ALPHABET.fullmatch(raw):
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(parts, list) or len(parts) != 3:
        return None
    if not all(isinstance(part, str) and text_problem(part) is None for part in parts):
        return None
    return parts


def decode_cursor(raw: str, order: KeysetOrder[Any], argument: str) -> tuple[Any, Any]:
    parts = _cursor_parts(raw)
    if parts is None:
        raise InvalidInput(argument, "not a cursor returned by this API")
    tag, sort, tiebreak = parts
    if tag != order.tag:
        raise InvalidInput(argument, "cursor belongs to a different listing or ordering")
    try:
        return order.parse_sort(sort), order.parse_tiebreak(tiebreak)
    except (ValueError, OverflowError) as exc:  # parsers take str: nothing else to catch
        raise InvalidInput(argument, "not a cursor returned by this API") from exc


def _checked_size(value: int | None, argument: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
        raise InvalidInput(argument, f"must be between 0 and {MAX_PAGE_SIZE}")
    return value


def _beyond(
    order: KeysetOrder[Any], key: tuple[Any, Any], descending: bool, inclusive: bool
) -> Any:
    """Rows strictly after `key` when walking in the given direction (or at it, if inclusive)."""
    sort_value, tiebreak_value = key
    if descending:
        past_sort = order.sort < sort_value
        past_tie = (
            order.tiebreak <= tiebreak_value if inclusive else order.tiebreak < tiebreak_value
        )
    else:
        past_sort = order.sort > sort_value
        past_tie = (
            order.tiebreak >= tiebreak_value if inclusive else order.tiebreak > tiebreak_value
        )
    return or_(past_sort, and_(order.sort == sort_value, past_tie))


# How a listing's statement is read into its items: ORM instances, or records from Core rows.
_Fetch = Callable[[Select[Any]], Awaitable[Sequence[T]]]


def _instances(session: AsyncSession) -> _Fetch[Any]:
    async def fetch(statement: Select[Any]) -> Sequence[Any]:
        return (await session.scalars(statement)).all()

    return fetch


def _records(session: AsyncSession, record: Callable[..., T]) -> _Fetch[T]:
    async def fetch(statement: Select[Any]) -> Sequence[T]:
        return [record(*row) for row in await session.execute(statement)]

    return fetch


async def paginate(
    session: AsyncSession,
    stmt: Select[T],
    order: KeysetOrder[T],
    args: PageArgs,
) -> Page[T]:
    """A page of the ORM instances `stmt` selects."""
    return await _paginate(session, stmt, order, args, _instances(session))


async def paginate_records(
    session: AsyncSession,
    stmt: Select[Any],
    order: KeysetOrder[Any],
    args: PageArgs,
    record: Callable[..., T],
) -> Page[T]:
    """A page of records: `stmt` selects table columns, each row builds `record(*row)`; the
    order reads the records' keys by the columns' names (by_time's orders do)."""
    return await _paginate(session, stmt, order, args, _records(session, record))


async def _paginate(
    session: AsyncSession,
    stmt: Select[Any],
    order: KeysetOrder[Any],
    args: PageArgs,
    fetch: _Fetch[T],
) -> Page[T]:
    first = _checked_size(args.first, "first")
    last = _checked_size(args.last, "last")
    if first is not None and last is not None:
        raise InvalidInput("last", "give either first or last, not both")
    if args.after is not None and last is not None:
        raise InvalidInput("after", "after goes with first; use before with last")
    if args.before is not None and first is not None:
        raise InvalidInput("before", "before goes with last; use after with first")

    backward = last is not None or (args.before is not None and first is None)
    limit = (last if backward else first) or 0
    if first is None and last is None:
        limit = DEFAULT_PAGE_SIZE
    raw_cursor = args.before if backward else args.after
    cursor = (
        decode_cursor(raw_cursor, order, "before" if backward else "after")
        if raw_cursor is not None
        else None
    )
    walk_descending = order.descending != backward

    page_stmt = stmt
    if cursor is not None:
        page_stmt = page_stmt.where(_beyond(order, cursor, walk_descending, inclusive=False))
    if walk_descending:
        page_stmt = page_stmt.order_by(order.sort.desc(), order.tiebreak.desc())
    else:
        page_stmt = page_stmt.order_by(order.sort.asc(), order.tiebreak.asc())
    page_stmt = page_stmt.limit(limit + 1)
    rows = await fetch(page_stmt)
    has_more = len(rows) > limit
    items = list(rows[:limit])
    if backward:
        items.reverse()

    # Whether anything lies on the other side of the cursor (the cursor row included).
    has_behind = False
    if cursor is not None:
        behind = stmt.where(_beyond(order, cursor, not walk_descending, inclusive=True))
        has_behind = bool(await session.scalar(select(exists(behind.subquery().select()))))

    return Page(
        items=items,
        cursors=[_cursor(order, item) for item in items],
        has_next_page=has_behind if backward else has_more,
        has_previous_page=has_more if backward else has_behind,
    )


def plain_first_page(args: PageArgs) -> int | None:
    """The page size when `args` ask for a first page and nothing else (no cursor, no last,
    a valid size): the case many parents can share one query for. None otherwise."""
    if args.after is not None or args.before is not None or args.last is not None:
        return None
    size = DEFAULT_PAGE_SIZE if args.first is None else args.first
    return size if 0 <= size <= MAX_PAGE_SIZE else None


async def first_pages(
    session: AsyncSession,
    model: type[T],
    stmt: Select[T],
    partition: Any,
    order: KeysetOrder[T],
    size: int,
    parents: Sequence[Any],
) -> dict[Any, Page[T]]:
    """The first page of each parent's ORM instances in one query: `stmt` selects the rows
    of every parent, `partition` is the column naming the parent. Each parent gets `size`
    rows in `order`, plus one more read to tell whether a next page exists."""
    items = _Ranked(lambda inner: select(aliased(model, inner)), _instances(session))
    return await _first_pages(items, stmt, partition, order, size, parents)


async def first_record_pages(
    session: AsyncSession,
    record: Callable[..., T],
    stmt: Select[Any],
    partition: Any,
    order: KeysetOrder[Any],
    size: int,
    parents: Sequence[Any],
) -> dict[Any, Page[T]]:
    """first_pages of records: `stmt` selects table columns (`partition` among them), each
    row builds `record(*row)`, whose fields are named like the columns."""
    columns = _Ranked(
        lambda inner: select(*(c for c in inner.c if c.key != _POSITION)),
        _records(session, record),
    )
    return await _first_pages(columns, stmt, partition, order, size, parents)


@dataclass(frozen=True)
class _Ranked(Generic[T]):
    """How first_pages reads the items of its ranked subquery."""

    selected: Callable[[Subquery], Select[Any]]  # the select of the items from it
    fetch: _Fetch[T]


async def _first_pages(
    items: _Ranked[T],
    stmt: Select[Any],
    partition: Any,
    order: KeysetOrder[Any],
    size: int,
    parents: Sequence[Any],
) -> dict[Any, Page[T]]:
    if order.descending:
        ordering = (order.sort.desc(), order.tiebreak.desc())
    else:
        ordering = (order.sort.asc(), order.tiebreak.asc())
    position = func.row_number().over(partition_by=partition, order_by=ordering).label(_POSITION)
    inner = stmt.add_columns(position).subquery()
    ranked = (
        items.selected(inner)
        .where(inner.c[_POSITION] <= size + 1)
        .order_by(inner.c[partition.key], inner.c[_POSITION])
    )
    grouped: dict[Any, list[T]] = {parent: [] for parent in parents}
    for item in await items.fetch(ranked):
        grouped[getattr(item, partition.key)].append(item)
    return {
        parent: Page(
            items=rows[:size],
            cursors=[_cursor(order, r) for r in rows[:size]],
            has_next_page=len(rows) > size,
            has_previous_page=False,
        )
        for parent, rows in grouped.items()
    }
