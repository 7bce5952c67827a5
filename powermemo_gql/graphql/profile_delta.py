"""Event.profileDelta as typed items: what a flush did to the profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import strawberry

from powermemo_gql.events.models import DeltaAction as DeltaActionEnum

ProfileDeltaAction = strawberry.enum(
    DeltaActionEnum,
    name="ProfileDeltaAction",
    description="What a flush did to a profile entry.",
)


@strawberry.type(description="One profile change an event made.")
class ProfileDeltaItem:
    action: ProfileDeltaAction  # type: ignore[valid-type]
    topic: str
    sub_topic: str
    content: str | None = strawberry.field(
        description="The entry's content after the change (null when deleted)."
    )
    previous: str | None = strawberry.field(
        description="The entry's content before the change (null when added)."
    )


def delta_items(delta: Sequence[Mapping[str, Any]]) -> list[ProfileDeltaItem]:
    """The stored items (see events.models.Event.profile_delta) as typed items."""
    return [
        ProfileDeltaItem(
            action=DeltaActionEnum(item["action"]),
            topic=item["topic"],
            sub_topic=item["sub_topic"],
            # Stored as "" when deleted: null says it better.
            content=None if item["action"] == DeltaActionEnum.DELETE else item.get("content"),
            previous=item.get("previous"),
        )
        for item in delta
    ]
