"""A project's profile configuration over GraphQL: slots, strict/validate modes, event tags."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from powermemo_gql.graphql.blobs import plain_input
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.errors import InvalidInput, domain_errors_as_results
from powermemo_gql.profiles.config import ProfileConfig as ProfileConfigModel
from powermemo_gql.projects.service import ProjectService


@strawberry.enum(description="A language of the pipeline's prompts and of the memories written.")
class Language(Enum):
    EN = strawberry.enum_value("en", description="English.")
    ZH = strawberry.enum_value("zh", description="Chinese.")


@strawberry.type(description="A sub-topic of a slot.")
class ProfileSubTopic:
    name: str = strawberry.field(description="Its name, e.g. email.")
    description: str | None = strawberry.field(
        description="What belongs under it, told to the LLM; null if none."
    )


@strawberry.type(description="A topic the pipeline files facts under, with its sub-topics.")
class ProfileSlot:
    topic: str = strawberry.field(description="The topic's name, e.g. contact_info.")
    description: str | None = strawberry.field(
        description="What belongs under it, told to the LLM; null if none."
    )
    sub_topics: list[ProfileSubTopic] = strawberry.field(
        description="Its sub-topics; empty: any sub-topic fits."
    )


@strawberry.type(description="A tag the pipeline gives events, with a value from their summary.")
class EventTagConfig:
    name: str = strawberry.field(description="The tag's name.")
    description: str | None = strawberry.field(
        description="What the tag means, told to the LLM; null if none."
    )


@strawberry.type(
    description="How the pipeline files a project's facts: slots, modes, event tags, language."
)
class ProfileConfig:
    slots: list[ProfileSlot] = strawberry.field(
        description="The topics facts are filed under (the default slots unless set)."
    )
    strict: bool = strawberry.field(description="Keep only facts that fit a slot.")
    validate_entries: bool = strawberry.field(
        description="Let the LLM refuse new facts that do not fit their slot's description."
    )
    event_tags: list[EventTagConfig] = strawberry.field(
        description="The tags the pipeline gives events; empty: events are not tagged."
    )
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


@strawberry.input(description="A sub-topic of a slot.")
class ProfileSubTopicInput:
    name: str = strawberry.field(description="1 to 100 characters, unique within its slot.")
    description: str | None = strawberry.field(
        default=None, description="What belongs under it, for the LLM: at most 500 characters."
    )


@strawberry.input(description="A topic the pipeline files facts under, with its sub-topics.")
class ProfileSlotInput:
    topic: str = strawberry.field(description="1 to 100 characters, unique among the slots.")
    description: str | None = strawberry.field(
        default=None, description="What belongs under it, for the LLM: at most 500 characters."
    )
    sub_topics: list[ProfileSubTopicInput] = strawberry.field(
        default_factory=list, description="At most 50; none: any sub-topic fits."
    )


@strawberry.input(description="A tag for the pipeline to give events.")
class EventTagInput:
    name: str = strawberry.field(description="1 to 100 characters, unique among the tags.")
    description: str | None = strawberry.field(
        default=None, description="What the tag means, for the LLM: at most 500 characters."
    )


@strawberry.input(description="Fields left out take their defaults (slots: the default slots).")
class ProfileConfigInput:
    slots: list[ProfileSlotInput] | None = strawberry.field(
        default=strawberry.UNSET, description="At most 100; null or left out: the default slots."
    )
    strict: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Keep only facts that fit a slot; false if left out."
    )
    validate_entries: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Let the LLM refuse new facts that do not fit their slot's description; false if "
            "left out."
        ),
    )
    event_tags: list[EventTagInput] | None = strawberry.field(
        default=strawberry.UNSET, description="At most 50; none if left out."
    )
    language: Language | None = strawberry.field(
        default=strawberry.UNSET, description="Null or left out: the server's language setting."
    )
    system_prompt: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="At most 4000 characters; null or left out: the server's system_prompt.",
    )


@strawberry.type(description="The project's profile configuration was replaced.")
class SetProfileConfigPayload:
    config: ProfileConfig = strawberry.field(description="The configuration now.")


SetProfileConfigResult = Annotated[
    SetProfileConfigPayload | InvalidInput,
    strawberry.union("SetProfileConfigResult", description="The new configuration, or why not."),
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
    @domain_errors_as_results()
    async def set_profile_config(
        self,
        info: Info,
        input: Annotated[
            ProfileConfigInput, strawberry.argument(description="The whole new configuration.")
        ],
    ) -> SetProfileConfigResult:
        ctx = info.context
        async with ctx.uow() as session:
            config = await ProjectService(session).set_profile_config(
                ctx.project_id, plain_input(input)
            )
        return SetProfileConfigPayload(config=to_profile_config(config))
