"""The described arguments of users and of User's fields (blobs, flushes, profile, search,
context), so that users.py stays a list of fields."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from powermemo_gql.core.pagination import MAX_PAGE_SIZE
from powermemo_gql.graphql.blobs import BlobType
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.search import SearchKind, SearchModeType
from powermemo_gql.memory.context import MAX_CONTEXT_TOKENS
from powermemo_gql.recall.search import MAX_FILTER_VALUES, MAX_FIRST, MAX_QUERY_CHARS
from powermemo_gql.users.repository import UserOrderField as OrderField

# Query.users
UserOrderField = described_enum(
    OrderField,
    name="UserOrderField",
    description="What users are listed by.",
    values={
        "CREATED_AT": "When the user was created.",
        "UPDATED_AT": "When the user's data was last replaced (its creation until then).",
        "ID": "The app's id of the user, in the database's text order.",
    },
)


@strawberry.enum(description="Which way a listing runs.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("asc", description="Smallest (oldest) first.")
    DESC = strawberry.enum_value("desc", description="Largest (newest) first.")


@strawberry.input(description="How to order users.")
class UserOrder:
    field: UserOrderField = strawberry.field(  # type: ignore[valid-type]
        default=OrderField.CREATED_AT, description="What to order by; CREATED_AT if left out."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC if left out."
    )


UsersOrderBy = Annotated[
    UserOrder | None,
    strawberry.argument(description="By creation, oldest first, if left out."),
]

# User.blobs, User.flushes

BlobKindFilter = Annotated[
    BlobType | None,  # type: ignore[valid-type]
    strawberry.argument(description="Only blobs of this kind."),
]
FlushCount = Annotated[
    int,
    strawberry.argument(description=f"How many flushes at most: 0 to {MAX_PAGE_SIZE}."),
]

# User.profile
ProfileTopics = Annotated[
    list[str] | None,
    strawberry.argument(
        description="Only entries of these topics (exact names; [] filters nothing)."
    ),
]
ProfileTopk = Annotated[
    int | None,
    strawberry.argument(description="At most this many entries (0 or more)."),
]
ProfileMaxTokens = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "At most this many tokens (0 or more), counting each entry as "
            "'topic::subTopic: content' with cl100k_base; stops at the first entry that does "
            "not fit."
        )
    ),
]

# User.search
SearchQuery = Annotated[
    str,
    strawberry.argument(
        description=f"What to look for: 1 to {MAX_QUERY_CHARS} characters (trimmed)."
    ),
]
SearchFirst = Annotated[
    int, strawberry.argument(description=f"How many hits at most: 1 to {MAX_FIRST}.")
]
SearchKinds = Annotated[
    list[SearchKind] | None,  # type: ignore[valid-type]
    strawberry.argument(description="Only hits of these kinds (not empty; null: all)."),
]
SearchTopics = Annotated[
    list[str] | None,
    strawberry.argument(
        description=(
            f"Only profile entries of these topics: 1 to {MAX_FILTER_VALUES} topics of the "
            "project's configuration or the user's profile (another is InvalidInput)."
        )
    ),
]
HappenedAfter = Annotated[
    datetime | None,
    strawberry.argument(
        description="Only events and facts that end at or after this (happenedTo)."
    ),
]
HappenedBefore = Annotated[
    datetime | None,
    strawberry.argument(
        description=(
            "Only events and facts that start at or before this (happenedFrom); not earlier "
            "than happenedAfter."
        )
    ),
]
SearchModeArgument = Annotated[
    SearchModeType,  # type: ignore[valid-type]
    strawberry.argument(description="How to compare; HYBRID if left out."),
]

# User.context
ContextMaxTokens = Annotated[
    int,
    strawberry.argument(
        description=f"The most tokens of the whole text: 1 to {MAX_CONTEXT_TOKENS}."
    ),
]
PreferTopics = Annotated[
    list[str] | None,
    strawberry.argument(
        description=(
            "Profile topics packed first, in this order; the other entries follow, most "
            "recently updated first."
        )
    ),
]
OnlyTopics = Annotated[
    list[str] | None,
    strawberry.argument(description="Only profile entries of these topics."),
]
ProfileEventRatio = Annotated[
    float,
    strawberry.argument(
        description=(
            "Share of the tokens offered to the profile first (0 to 1), the rest to events; "
            "what one leaves unused the other may take."
        )
    ),
]
IncludeBuffer = Annotated[
    bool,
    strawberry.argument(
        description="Also pack the idle buffer's text (not yet in memory) into the tokens left."
    ),
]


@strawberry.input(description="A new user.")
class CreateUserInput:
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="Your own id for the user; a UUID is generated if omitted."
    )
    data: JSON | None = strawberry.field(default=None, description="A JSON object.")


@strawberry.input(description="A user's new data.")
class UpdateUserInput:
    user_id: strawberry.ID = strawberry.field(description="The app's id of the user.")
    data: JSON = strawberry.field(description="Replaces the user's data; a JSON object.")


@strawberry.input(description="The user to delete.")
class DeleteUserInput:
    user_id: strawberry.ID = strawberry.field(description="The app's id of the user.")
