"""What every pipeline step shares: the instructions that frame its call, and one way to ask
within the prompt budget."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import LLMClient
from powermemo_gql.memory.parsing import M, Usage, ask
from powermemo_gql.memory.prompts import Prompts, prompts_for
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Tokens the chat format adds around the two messages of a call.
MESSAGE_OVERHEAD_TOKENS = 16
# Fewer tokens than this for a step's input: the prompts do not fit the configured context.
MIN_INPUT_TOKENS = 200


@dataclass(frozen=True)
class Instructions:
    """The prompts of one flush: language, the app's own framing."""

    prompts: Prompts
    keep_input_language: bool
    system_prompt: str | None = None

    def system(self, template: str, *, language: bool = True, **fields: str) -> str:
        """A step's system message: the app's framing, the filled template, the language rule."""
        text = template
        for name, value in fields.items():
            text = text.replace("{" + name + "}", value)
        if self.system_prompt:
            text = self.prompts.app_frame.replace("{system_prompt}", self.system_prompt) + text
        if language:
            rule = (
                self.prompts.keep_language
                if self.keep_input_language
                else self.prompts.output_language
            )
            text += "\n" + rule
        return text


def instructions_for(config: ProfileConfig, settings: Settings) -> Instructions:
    """A project's instructions: its language and system prompt, else the server's."""
    return Instructions(
        prompts_for(config.language or settings.language),
        keep_input_language=settings.keep_input_language,
        system_prompt=config.system_prompt or settings.system_prompt,
    )


class Asker:
    """Asks the LLM for one parsed answer, keeping each prompt within `context_tokens`."""

    def __init__(self, llm: LLMClient, attempts: int, context_tokens: int, usage: Usage) -> None:
        self.llm = llm
        self.attempts = attempts
        self.context_tokens = context_tokens
        self.usage = usage

    async def __call__(self, purpose: str, system: str, user: str, model: type[M]) -> M:
        return await ask(self.llm, purpose, system, user, model, self.usage, self.attempts)

    def room(self, system: str) -> int:
        """Tokens left for the user message beside this system message; too few is a
        configuration the flush cannot work with, said as such."""
        room = self.context_tokens - count_tokens(system) - MESSAGE_OVERHEAD_TOKENS
        if room < MIN_INPUT_TOKENS:
            raise LLMUnavailable(
                f"llm_context_tokens ({self.context_tokens}) leaves {max(room, 0)} tokens beside "
                f"the instructions; raise it or shorten the system prompt and profile slots"
            )
        return room

    def batches(
        self, system: str, items: Sequence[T], as_json: Callable[[T], Any]
    ) -> list[list[T]]:
        """`items` in consecutive batches whose JSON list fits beside `system`; an item too
        large for any batch is left out (the caller's data is bounded well below that)."""
        room = self.room(system)
        batches: list[list[T]] = []
        current: list[T] = []
        used = 2  # the list's brackets
        for item in items:
            cost = count_tokens(json.dumps(as_json(item), ensure_ascii=False)) + 1
            if cost + 2 > room:
                logger.warning("an item of %d tokens fits no prompt; left out", cost)
                continue
            if current and used + cost > room:
                batches.append(current)
                current, used = [], 2
            current.append(item)
            used += cost
        if current:
            batches.append(current)
        return batches


def as_json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
