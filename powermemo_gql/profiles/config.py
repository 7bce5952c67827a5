"""What a project's profiles hold: topics and sub-topics (slots), event tags, language."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from powermemo_gql.core.validation import storable

Language = Literal["en", "zh"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)


class SubTopic(_Part):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class Slot(_Part):
    topic: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    sub_topics: list[SubTopic] = Field(default_factory=list, max_length=50)


class EventTag(_Part):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


def _unique(names: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where}: {what} '{name}' appears twice")
        seen.add(name)


def _slot(topic: str, *sub_topics: str) -> Slot:
    return Slot(topic=topic, sub_topics=[SubTopic(name=s) for s in sub_topics])


DEFAULT_SLOTS: tuple[Slot, ...] = (
    _slot("basic_info", "name", "age", "gender", "birth_date", "nationality", "language_spoken"),
    _slot("contact_info", "email", "phone", "city", "country"),
    _slot("education", "school", "degree", "major"),
    _slot("demographics", "marital_status", "number_of_children", "household_income"),
    _slot("work", "company", "title", "working_industry", "previous_projects", "work_skills"),
    _slot("interest", "books", "movies", "music", "foods", "sports"),
    _slot("psychological", "personality", "values", "beliefs", "motivations", "goals"),
    _slot("life_event", "marriage", "relocation", "retirement"),
)


class ProfileConfig(BaseModel):
    """A project's profile configuration; stored as JSON on the project, {} = all defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slots: list[Slot] = Field(default_factory=lambda: list(DEFAULT_SLOTS), max_length=100)
    # strict: keep only facts whose topic/sub_topic is a configured slot.
    strict: bool = False
    # validate: let the LLM refuse new facts that do not fit their slot's description.
    validate_entries: bool = False
    event_tags: list[EventTag] = Field(default_factory=list, max_length=50)
    # None: the server's `language` setting.
    language: Language | None = None
    # What the app is, framing every pipeline call; None: the server's `system_prompt`.
    system_prompt: str | None = Field(default=None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _unique_names(self) -> ProfileConfig:
        _unique([s.topic for s in self.slots], "slots", "topic")
        for i, slot in enumerate(self.slots):
            _unique([s.name for s in slot.sub_topics], f"slots[{i}].subTopics", "name")
        _unique([t.name for t in self.event_tags], "eventTags", "name")
        return self

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> ProfileConfig:
        return cls.model_validate(raw)

    def allows(self, topic: str, sub_topic: str) -> bool:
        for slot in self.slots:
            if slot.topic == topic:
                return not slot.sub_topics or any(s.name == sub_topic for s in slot.sub_topics)
        return False
