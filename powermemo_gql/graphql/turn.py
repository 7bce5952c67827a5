"""The context query's types: what the turn is about, and the packed context."""

from __future__ import annotations

from typing import Annotated

import strawberry

from powermemo_gql.graphql.blob_inputs import ChatMessageInput

TurnQuery = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "What the turn is about: the entries and events most relevant to it (by the hybrid "
            "search) are packed first, then the rest as without it."
        )
    ),
]
TurnChats = Annotated[
    list[ChatMessageInput] | None,
    strawberry.argument(
        description=(
            "The current conversation (at most 50 messages): its latest messages choose what "
            "is packed first, like query (both may be given)."
        )
    ),
]


@strawberry.type(description="A user's memory packed into one string for a prompt.")
class UserContext:
    text: str = strawberry.field(
        description=(
            "Profile and recent events between <memory> and </memory>, ready for a prompt; "
            "empty when nothing fits."
        )
    )
    tokens: int = strawberry.field(description="Tokens of `text`, at most maxTokens.")
    profile_entries: int = strawberry.field(description="Profile entries that fit.")
    events: int = strawberry.field(description="Events that fit.")
