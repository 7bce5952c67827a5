"""Strict parsing of LLM answers: JSON into pydantic models, or a clear failure."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import Completion, LLMClient

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SummaryAnswer(_Answer):
    summary: str


class Fact(_Answer):
    topic: str = Field(min_length=1, max_length=100)
    sub_topic: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=5000)


class FactsAnswer(_Answer):
    facts: list[Fact]


class Decision(_Answer):
    index: int = Field(ge=0)
    action: Literal["add", "update", "abort"]
    content: str | None = Field(default=None, max_length=5000)


class DecisionsAnswer(_Answer):
    decisions: list[Decision]


class Tag(_Answer):
    tag: str = Field(min_length=1, max_length=100)
    value: str = Field(max_length=500)


class TagsAnswer(_Answer):
    tags: list[Tag]


class UnparsableAnswer(ValueError):
    pass


def parse_answer(text: str, model: type[M]) -> M:
    """The JSON object in `text` (code fences and surrounding prose tolerated), validated."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise UnparsableAnswer("no JSON object in the answer")
    try:
        return model.model_validate(json.loads(text[start : end + 1]))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise UnparsableAnswer(str(exc).splitlines()[0]) from exc


@dataclass
class PurposeUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class Usage:
    """LLM calls and tokens spent, summed over one flush, and per step (purpose)."""

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.dropped_items = 0
        self.by_purpose: dict[str, PurposeUsage] = {}

    def add(self, completion: Completion, purpose: str = "") -> None:
        self.calls += 1
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        step = self.by_purpose.setdefault(purpose, PurposeUsage())
        step.calls += 1
        step.input_tokens += completion.input_tokens
        step.output_tokens += completion.output_tokens


async def ask(
    llm: LLMClient,
    purpose: str,
    system: str,
    user: str,
    model: type[M],
    usage: Usage,
    attempts: int,
) -> M:
    """Ask until the answer parses, at most `attempts` times."""
    problem = ""
    for attempt in range(1, attempts + 1):
        completion = await llm.complete(purpose, system, user)
        usage.add(completion, purpose)
        try:
            return parse_answer(completion.text, model)
        except UnparsableAnswer as exc:
            problem = str(exc)
            logger.warning("LLM %s answer %d unparsable: %s", purpose, attempt, problem)
    raise LLMUnavailable(f"LLM {purpose} gave no usable answer in {attempts} tries: {problem}")


class OrganizedEntry(_Answer):
    sub_topic: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=5000)


class OrganizeAnswer(_Answer):
    entries: list[OrganizedEntry] = Field(min_length=1)


class ShortenedEntry(_Answer):
    index: int = Field(ge=0)
    content: str = Field(min_length=1, max_length=5000)


class ShortenAnswer(_Answer):
    entries: list[ShortenedEntry]
