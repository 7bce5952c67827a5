"""A project's profile configuration over GraphQL: slots, strict/validate modes, event tags."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from powermemo_gql.errors import DomainError
from powermemo_gql.graphql.blobs import plain_input
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import InvalidInput, error_result
from powermemo_gql.profiles.config import ProfileConfig as ProfileConfigModel
from powermemo_gql.projects.service import ProjectService

Info = strawberry.Info[Context, None]


@strawberry.enum
class Language(Enum):
    EN = "en"
    ZH = "zh"


@strawberry.type
class ProfileSubTopic:
    name: str
    description: str | None


@strawberry.type(description="A topic the pipeline files facts under, with its sub-topics.")
class ProfileSlot:
    topic: str
    description: str | None
    sub_topics: list[ProfileSubTopic]


@strawberry.type
class EventTagConfig:
    name: str
    description: str | None


@strawberry.type
class ProfileConfig:
    slots: list[ProfileSlot]
    strict: bool = strawberry.field(description="Keep only facts that fit a slot.")
    validate_entries: bool = strawberry.field(
        description="Let the LLM refuse new facts that do not fit their slot's description."
    )
    event_tags: list[EventTagConfig]
    language: Language | None = strawberry.field(
        description="Language of prompts and memories; null means the server's setting."
    )
    system_prompt: str | None = strawberry.field(
        description=(
            "What the app is, framing every pipeline call (e.g. 'a language tutor: track the "
            "learner's level and mistakes'); null means the server's system_prompt setting."
        )
    )


def to_profile_config(config: ProfileConfigModel) -> ProfileConfig:
    return ProfileConfig(
        slots=[
            ProfileSlot(
                topic=s.topic,
                description=s.description,
                sub_topics=[
                    ProfileSubTopic(name=t.name, description=t.description) for t in s.sub_topics
                ],
            )
            for s in config.slots
        ],
        strict=config.strict,
        validate_entries=config.validate_entries,
        event_tags=[
            EventTagConfig(name=t.name, description=t.description) for t in config.event_tags
        ],
        language=Language(config.language) if config.language else None,
        system_prompt=config.system_prompt,
    )


@strawberry.input
class ProfileSubTopicInput:
    name: str
    description: str | None = None


@strawberry.input
class ProfileSlotInput:
    topic: str
    description: str | None = None
    sub_topics: list[ProfileSubTopicInput] = strawberry.field(default_factory=list)


@strawberry.input
class EventTagInput:
    name: str
    description: str | None = None


@strawberry.input(description="Fields left out take their defaults (slots: the default slots).")
class ProfileConfigInput:
    slots: list[ProfileSlotInput] | None = strawberry.UNSET
    strict: bool | None = strawberry.UNSET
    validate_entries: bool | None = strawberry.UNSET
    event_tags: list[EventTagInput] | None = strawberry.UNSET
    language: Language | None = strawberry.UNSET
    system_prompt: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="At most 4000 characters; null or left out: the server's system_prompt.",
    )


@strawberry.type
class SetProfileConfigPayload:
    config: ProfileConfig


SetProfileConfigResult = Annotated[
    SetProfileConfigPayload | InvalidInput, strawberry.union("SetProfileConfigResult")
]


@strawberry.type
class ProfileConfigQuery:
    @strawberry.field(description="The caller's project's profile configuration.")
    async def profile_config(self, info: Info) -> ProfileConfig:
        ctx = info.context
        async with ctx.uow() as session:
            config = await ProjectService(session).profile_config(ctx.project_id)
        return to_profile_config(config)


@strawberry.type
class ProfileConfigMutation:
    @strawberry.mutation(description="Replace the caller's project's profile configuration.")
    async def set_profile_config(
        self, info: Info, input: ProfileConfigInput
    ) -> SetProfileConfigResult:
        ctx = info.context
        try:
            async with ctx.uow() as session:
                config = await ProjectService(session).set_profile_config(
                    ctx.project_id, plain_input(input)
                )
        except DomainError as error:
            return error_result(error)
        return SetProfileConfigPayload(config=to_profile_config(config))
