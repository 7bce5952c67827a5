"""LLM answers into pydantic models: read tolerantly, validated item by item.

The JSON is found and read leniently (json_repair.py); its shape is then bent towards the
answer model: key spellings and aliases, a bare list or one object per line instead of the
wrapper, numbers or lists where text is expected, actions in any case. Each item of a list
is validated on its own: an invalid one is dropped and counted, the others are kept. An
answer fails only when no JSON is found, the wrapper cannot be recovered, or every item
given was invalid (then asking again is better than using nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.answer_shapes import decoded_string, list_field, shaped_answer
from powermemo_gql.memory.client import Completion, LLMClient
from powermemo_gql.memory.json_repair import CutObject, json_values

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


class UnparsableAnswer(ValueError):
    pass


@dataclass(frozen=True)
class Parsed(Generic[M]):
    answer: M
    dropped: int  # items of the answer that were invalid and left out
    problem: str  # why the first dropped item was, or ""


def parse_answer(text: str, model: type[M]) -> M:
    """The answer in `text` as `model`; invalid items left out. Raises UnparsableAnswer."""
    parsed = parse_answer_counted(text, model)
    if parsed.dropped:
        logger.warning(
            "%s: dropped %d invalid item(s): %s", model.__name__, parsed.dropped, parsed.problem
        )
    return parsed.answer


def parse_answer_counted(text: str, model: type[M]) -> Parsed[M]:
    """The answer in `text` as `model`, with how many invalid items were left out."""
    found = json_values(text)
    twice = decoded_string(text) if not found else None
    if twice is not None:
        found = json_values(twice)
    if not found:
        raise UnparsableAnswer("no JSON object in the answer")
    first_problem = ""
    for candidate in shaped_answer(model, [f.value for f in found]):
        try:
            return _validated(candidate, model)
        except UnparsableAnswer as exc:
            first_problem = first_problem or str(exc)
    raise UnparsableAnswer(first_problem or f"no {model.__name__} in the answer")


def _validated(candidate: dict[str, object], model: type[M]) -> Parsed[M]:
    """`candidate` as `model`, each item of its list validated on its own."""
    kept: dict[str, object] = dict(candidate)
    dropped, problem = 0, ""
    listed = list_field(model)
    items = candidate.get(listed[0]) if listed else None
    if listed is not None and isinstance(items, list):
        name, item_model = listed
        valid: list[BaseModel] = []
        for position, item in enumerate(items):
            try:
                if isinstance(item, CutObject):
                    raise UnparsableAnswer("cut off where the answer ends")
                valid.append(item_model.model_validate(item))
            except (ValidationError, UnparsableAnswer) as exc:
                dropped += 1
                reason = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
                problem = problem or f"{name}[{position}] {reason}"
        if items and not valid:
            raise UnparsableAnswer(f"all {len(items)} {name} invalid: {problem}")
        kept[name] = valid
    try:
        answer = model.model_validate(kept)
    except ValidationError as exc:
        raise UnparsableAnswer(_first_error(exc)) from exc
    return Parsed(answer, dropped, problem)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    return f"{where}: {error['msg']}"


@dataclass
class PurposeUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Usage:
    """LLM calls and tokens spent, summed over one flush, in all and per purpose."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    dropped_items: int = 0  # invalid items left out of answers that were used
    by_purpose: dict[str, PurposeUsage] = field(default_factory=dict)

    def add(self, completion: Completion, purpose: str) -> None:
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
            parsed = parse_answer_counted(completion.text, model)
        except UnparsableAnswer as exc:
            problem = str(exc)
            logger.warning("LLM %s answer %d unparsable: %s", purpose, attempt, problem)
            continue
        if parsed.dropped:
            usage.dropped_items += parsed.dropped
            logger.warning(
                "LLM %s answer: dropped %d invalid item(s), first %s",
                purpose,
                parsed.dropped,
                parsed.problem,
            )
        return parsed.answer
    raise LLMUnavailable(f"LLM {purpose} gave no usable answer in {attempts} tries: {problem}")
