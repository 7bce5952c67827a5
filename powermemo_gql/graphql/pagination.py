"""Relay connection types shared by every paginated field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Generic, TypeVar

import strawberry

from powermemo_gql.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageArgs
from powermemo_gql.errors import InvalidInput
from powermemo_gql.graphql.errors import bad_user_input

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


# The paging arguments of every connection field, declared once.
First = Annotated[
    int | None,
    strawberry.argument(
        description=(
            f"At most this many items from the start, or after `after`: 0 to {MAX_PAGE_SIZE} "
            f"({DEFAULT_PAGE_SIZE} when neither first nor last is given). Not with last or before."
        )
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "The items after this cursor (an edge's cursor or endCursor from the same field, "
            "with the same ordering). Goes with first."
        )
    ),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description=(
            f"At most this many items from the end, or before `before`: 0 to {MAX_PAGE_SIZE}. "
            "Not with first or after."
        )
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "The items before this cursor (an edge's cursor or startCursor from the same "
            "field, with the same ordering). Goes with last."
        )
    ),
]


@strawberry.type(description="Where a page lies in its listing.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Items follow this page's last one (in the listing's order)."
    )
    has_previous_page: bool = strawberry.field(
        description=(
            "Items come before this page's first one (false for a page read with first and "
            "no after)."
        )
    )
    start_cursor: str | None = strawberry.field(
        description="The first edge's cursor, for before: (null when the page is empty)."
    )
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor, for after: (null when the page is empty)."
    )


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(
        description=(
            "Opaque position of the item in its listing, for after: or before:; it stays "
            "usable after the item is deleted."
        )
    )
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(
    description=(
        "One page of a listing (Relay cursor connection). A paging argument that cannot be "
        "used is a GraphQL error with extensions.code BAD_USER_INPUT and extensions.field."
    )
)
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(
        description="The page's items with their cursors, in the listing's order."
    )
    page_info: PageInfo = strawberry.field(description="Whether more items lie on either side.")

    @strawberry.field(description="The nodes of `edges`, for clients that need no cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


def to_connection(page: Page[RowT], convert: Callable[[RowT], NodeT]) -> Connection[NodeT]:
    edges = [
        Edge(cursor=cursor, node=convert(item))
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    )


def page_args(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageArgs:
    return PageArgs(first=first, after=after, last=last, before=before)


@contextmanager
def query_input_errors() -> Iterator[None]:
    """Turn a rejected query argument into a BAD_USER_INPUT error naming it."""
    try:
        yield
    except InvalidInput as error:
        raise bad_user_input(error) from error
