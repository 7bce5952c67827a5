"""ask(): retries an unusable answer, counts dropped items and usage per purpose."""

from __future__ import annotations

import pytest

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import Completion
from powermemo_gql.memory.parsing import FactsAnswer, PurposeUsage, SummaryAnswer, Usage, ask


class _Answers:
    """An LLMClient answering from a list, in order."""

    def __init__(self, *texts: str) -> None:
        self._texts = list(texts)
        self.purposes: list[str] = []

    async def complete(self, purpose: str, system: str, user: str) -> Completion:
        self.purposes.append(purpose)
        return Completion(self._texts.pop(0), input_tokens=10, output_tokens=3)


GOOD_AND_BAD_FACTS = (
    '{"facts": [{"topic": "work", "sub_topic": "title", "content": "teacher"},'
    ' {"topic": "work"}, {"sub_topic": "x"}]}'
)


async def test_dropped_items_of_the_used_answer_are_counted() -> None:
    usage = Usage()
    answer = await ask(_Answers(GOOD_AND_BAD_FACTS), "extract", "s", "u", FactsAnswer, usage, 2)
    assert [f.content for f in answer.facts] == ["teacher"]
    assert usage.dropped_items == 2


async def test_an_unusable_answer_is_asked_again_and_its_items_are_not_counted() -> None:
    usage = Usage()
    llm = _Answers('{"facts": [{"topic": "a"}]}', GOOD_AND_BAD_FACTS)
    answer = await ask(llm, "extract", "s", "u", FactsAnswer, usage, 2)
    assert len(answer.facts) == 1
    assert llm.purposes == ["extract", "extract"]
    assert usage.dropped_items == 2  # the refused first answer's item is not among them


async def test_usage_is_summed_in_all_and_per_purpose() -> None:
    usage = Usage()
    llm = _Answers("no json", '{"summary": "x"}', '{"facts": []}')
    await ask(llm, "summarize", "s", "u", SummaryAnswer, usage, 2)
    await ask(llm, "extract", "s", "u", FactsAnswer, usage, 2)
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (3, 30, 9)
    assert usage.by_purpose == {
        "summarize": PurposeUsage(calls=2, input_tokens=20, output_tokens=6),
        "extract": PurposeUsage(calls=1, input_tokens=10, output_tokens=3),
    }


async def test_no_usable_answer_in_all_tries_is_llm_unavailable_with_the_reason() -> None:
    usage = Usage()
    llm = _Answers("no json", '{"facts": [{"topic": "a"}]}')
    with pytest.raises(LLMUnavailable, match=r"2 tries: all 1 facts invalid: facts\[0\]") as info:
        await ask(llm, "extract", "s", "u", FactsAnswer, usage, 2)
    assert info.value.code == "LLM_UNAVAILABLE"
    assert usage.calls == 2
