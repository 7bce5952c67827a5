"""A corpus of malformed answers, as small local models give them, and what each must parse to.

Every answer model of parsing.py is covered. An entry's `expected` is the exact answer (as
`model_dump()`) and how many invalid items were dropped; or, for the few that must be refused,
a piece of the reason given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from powermemo_gql.memory.parsing import (
    DecisionsAnswer,
    FactsAnswer,
    OrganizeAnswer,
    ShortenAnswer,
    SummaryAnswer,
    TagsAnswer,
    UnparsableAnswer,
    parse_answer_counted,
)


@dataclass(frozen=True)
class Refused:
    reason: str  # a piece of the UnparsableAnswer message


@dataclass(frozen=True)
class Case:
    name: str
    model: type[BaseModel]
    text: str
    expected: dict[str, Any] | Refused
    dropped: int = 0


def _fact(topic: str, sub_topic: str, content: str) -> dict[str, str]:
    return {"topic": topic, "sub_topic": sub_topic, "content": content}


def _decision(index: int, action: str, content: str | None = None) -> dict[str, Any]:
    return {"index": index, "action": action, "content": content}


TEACHER = _fact("work", "title", "chemistry teacher")
LYON = _fact("contact_info", "city", "Lyon")

CORPUS = [
    # --- SummaryAnswer ---
    Case(
        "summary in a code fence",
        SummaryAnswer,
        '```json\n{"summary": "Alice teaches chemistry."}\n```',
        {"summary": "Alice teaches chemistry."},
    ),
    Case(
        "summary after a think block",
        SummaryAnswer,
        '<think>The user wants {"summary": "..."} so I write it.</think>\n'
        '{"summary": "Alice lives in Lyon."}',
        {"summary": "Alice lives in Lyon."},
    ),
    Case(
        "summary after an unclosed think block",
        SummaryAnswer,
        "<think>Let me think about the notes. They say Alice moved.\n"
        '{"summary": "Alice moved to Lyon."}',
        {"summary": "Alice moved to Lyon."},
    ),
    Case(
        "summary with prose around",
        SummaryAnswer,
        'Sure! Here is the JSON:\n{"summary": "Bob likes tea."}\nLet me know if you need more.',
        {"summary": "Bob likes tea."},
    ),
    Case(
        "summary with a raw newline and tab",
        SummaryAnswer,
        '{"summary": "Bob likes tea.\nHe drinks it\tdaily."}',
        {"summary": "Bob likes tea.\nHe drinks it\tdaily."},
    ),
    Case(
        "summary given as a list of sentences",
        SummaryAnswer,
        '{"summary": ["Bob likes tea.", "He lives in Oslo."]}',
        {"summary": "Bob likes tea.\nHe lives in Oslo."},
    ),
    Case(
        "summary with unescaped inner quotes",
        SummaryAnswer,
        '{"summary": "Bob said "hello" to Alice."}',
        {"summary": 'Bob said "hello" to Alice.'},
    ),
    Case(
        "summary in single quotes with an apostrophe",
        SummaryAnswer,
        "{'summary': 'Bob's sister is a nurse.'}",
        {"summary": "Bob's sister is a nurse."},
    ),
    Case(
        "summary under another key",
        SummaryAnswer,
        '{"Summary_Text": "Bob is 40."}',
        {"summary": "Bob is 40."},
    ),
    Case(
        "summary wrapped one level down",
        SummaryAnswer,
        '{"result": {"summary": "Bob is 40."}}',
        {"summary": "Bob is 40."},
    ),
    Case(
        "summary encoded twice",
        SummaryAnswer,
        '"{\\"summary\\": \\"Bob is 40.\\"}"',
        {"summary": "Bob is 40."},
    ),
    Case("summary as plain prose", SummaryAnswer, "Bob is 40.", Refused("no JSON")),
    # --- FactsAnswer ---
    Case(
        "facts with trailing commas",
        FactsAnswer,
        '{"facts": [{"topic": "work", "sub_topic": "title", "content": "chemistry teacher",},]}',
        {"facts": [TEACHER]},
    ),
    Case(
        "facts with sub_topic spelled four ways",
        FactsAnswer,
        '{"facts": [{"topic": "work", "subtopic": "title", "content": "chemistry teacher"},'
        '{"topic": "contact_info", "subTopic": "city", "content": "Lyon"},'
        '{"topic": "work", "sub-topic": "school", "content": "Lycee Ampere"},'
        '{"Topic": "work", "Sub Topic": "since", "Content": "2019"}]}',
        {
            "facts": [
                TEACHER,
                LYON,
                _fact("work", "school", "Lycee Ampere"),
                _fact("work", "since", "2019"),
            ]
        },
    ),
    Case(
        "facts with content named value, text and memo",
        FactsAnswer,
        '{"facts": [{"topic": "work", "sub_topic": "title", "value": "chemistry teacher"},'
        '{"topic": "contact_info", "sub_topic": "city", "text": "Lyon"},'
        '{"topic": "basic_info", "sub_topic": "name", "memo": "Alice"}]}',
        {"facts": [TEACHER, LYON, _fact("basic_info", "name", "Alice")]},
    ),
    Case(
        "facts with a number and a list where text is expected",
        FactsAnswer,
        '{"facts": [{"topic": "basic_info", "sub_topic": "age", "content": 34},'
        '{"topic": "interests", "sub_topic": "sports", "content": ["tennis", "chess"]},'
        '{"topic": "basic_info", "sub_topic": "married", "content": true}]}',
        {
            "facts": [
                _fact("basic_info", "age", "34"),
                _fact("interests", "sports", "tennis; chess"),
                _fact("basic_info", "married", "true"),
            ]
        },
    ),
    Case(
        "facts as a bare list",
        FactsAnswer,
        '[{"topic": "work", "sub_topic": "title", "content": "chemistry teacher"}]',
        {"facts": [TEACHER]},
    ),
    Case(
        "facts as one object per line",
        FactsAnswer,
        '{"topic": "work", "sub_topic": "title", "content": "chemistry teacher"}\n'
        '{"topic": "contact_info", "sub_topic": "city", "content": "Lyon"}\n',
        {"facts": [TEACHER, LYON]},
    ),
    Case(
        "a single fact under 'fact'",
        FactsAnswer,
        '{"fact": {"topic": "work", "sub_topic": "title", "content": "chemistry teacher"}}',
        {"facts": [TEACHER]},
    ),
    Case(
        "a lone fact without the wrapper",
        FactsAnswer,
        '{"topic": "contact_info", "sub_topic": "city", "content": "Lyon"}',
        {"facts": [LYON]},
    ),
    Case(
        "facts with one invalid item among valid ones",
        FactsAnswer,
        '{"facts": [{"topic": "work", "sub_topic": "title", "content": "chemistry teacher"},'
        '{"topic": "work", "content": "no sub-topic"},'
        '{"topic": "contact_info", "sub_topic": "city", "content": "Lyon"}]}',
        {"facts": [TEACHER, LYON]},
        dropped=1,
    ),
    Case(
        "facts in single quotes, Python literals, bare keys",
        FactsAnswer,
        "{facts: [{'topic': 'work', 'sub_topic': 'title', 'content': 'chemistry teacher'},"
        " {'topic': 'x', 'sub_topic': None, 'content': 'dropped'}]}",
        {"facts": [TEACHER]},
        dropped=1,
    ),
    Case(
        "facts as a mapping of topics",
        FactsAnswer,
        '{"facts": {"work": {"title": "chemistry teacher"}, "contact_info": {"city": "Lyon"}}}',
        {"facts": [TEACHER, LYON]},
    ),
    Case(
        "facts cut off by the token limit",
        FactsAnswer,
        '{"facts": [{"topic": "work", "sub_topic": "title", "content": "chemistry teacher"},'
        ' {"topic": "contact_info", "sub_topic": "city", "content": "Ly',
        {"facts": [TEACHER]},
        dropped=1,
    ),
    Case(
        "facts wrapped one level down",
        FactsAnswer,
        '{"result": {"facts": [{"topic": "work", "sub_topic": "title", '
        '"content": "chemistry teacher"}]}}',
        {"facts": [TEACHER]},
    ),
    Case("no facts at all is a valid answer", FactsAnswer, '{"facts": []}', {"facts": []}),
    Case(
        "every fact invalid",
        FactsAnswer,
        '{"facts": [{"topic": "work"}, {"content": "orphan"}]}',
        Refused("all 2 facts invalid"),
    ),
    Case("no JSON at all", FactsAnswer, "I could not find any facts.", Refused("no JSON")),
    # --- DecisionsAnswer ---
    Case(
        "decisions with upper and mixed case actions",
        DecisionsAnswer,
        '{"decisions": [{"index": 0, "action": "UPDATE", "content": "Lyon, France"},'
        '{"index": 1, "action": "Add"}, {"index": 2, "action": " abort "}]}',
        {
            "decisions": [
                _decision(0, "update", "Lyon, France"),
                _decision(1, "add"),
                _decision(2, "abort"),
            ]
        },
    ),
    Case(
        "decisions with the index as text and action synonyms",
        DecisionsAnswer,
        '{"decisions": [{"index": "0", "action": "replace", "content": "x"},'
        '{"idx": 1, "action": "skip"}, {"index": "#2", "decision": "new"}]}',
        {"decisions": [_decision(0, "update", "x"), _decision(1, "abort"), _decision(2, "add")]},
    ),
    Case(
        "decisions with an unknown action dropped",
        DecisionsAnswer,
        '{"decisions": [{"index": 0, "action": "delete"}, {"index": 1, "action": "update", '
        '"new_content": "y"}]}',
        {"decisions": [_decision(1, "update", "y")]},
        dropped=1,
    ),
    Case(
        "decisions as a bare list in a fence with prose",
        DecisionsAnswer,
        'Here are my decisions:\n```\n[{"index": 0, "action": "abort"}]\n```',
        {"decisions": [_decision(0, "abort")]},
    ),
    Case(
        "decisions as JSONL with a trailing comma",
        DecisionsAnswer,
        '{"index": 0, "action": "add",}\n{"index": 1, "action": "update", "content": "z"}',
        {"decisions": [_decision(0, "add"), _decision(1, "update", "z")]},
    ),
    # --- TagsAnswer ---
    Case(
        "tags with a boolean and a number as values",
        TagsAnswer,
        '{"tags": [{"tag": "urgent", "value": true}, {"tag": "rating", "value": 4}]}',
        {"tags": [{"tag": "urgent", "value": "true"}, {"tag": "rating", "value": "4"}]},
    ),
    Case(
        "tags as a mapping",
        TagsAnswer,
        '{"tags": {"mood": "calm", "topic": "travel"}}',
        {"tags": [{"tag": "mood", "value": "calm"}, {"tag": "topic", "value": "travel"}]},
    ),
    Case(
        "tags named name/content",
        TagsAnswer,
        '<think>\nmood is clear\n</think>{"tags": [{"name": "mood", "content": "calm"}]}',
        {"tags": [{"tag": "mood", "value": "calm"}]},
    ),
    Case(
        "tags under 'items', tag names and values in any case",
        TagsAnswer,
        '{"Items": [{"Tag": "mood", "Value": "calm"},'
        ' {"TAG": "topic", "VALUE": ["travel", "food"]}]}',
        {"tags": [{"tag": "mood", "value": "calm"}, {"tag": "topic", "value": "travel; food"}]},
    ),
    Case(
        "a lone tag",
        TagsAnswer,
        '{"tag": "mood", "value": "calm"}',
        {"tags": [{"tag": "mood", "value": "calm"}]},
    ),
    # --- OrganizeAnswer ---
    Case(
        "organize entries with camelCase keys as a bare list",
        OrganizeAnswer,
        '[{"subTopic": "pets", "text": "a cat and a dog"}, {"SubTopic": "sports", '
        '"content": ["tennis", "golf"]}]',
        {
            "entries": [
                {"sub_topic": "pets", "content": "a cat and a dog"},
                {"sub_topic": "sports", "content": "tennis; golf"},
            ]
        },
    ),
    Case(
        "organize entries as a mapping",
        OrganizeAnswer,
        "```json\n{'entries': {'pets': 'a cat', 'sports': 'tennis'}}\n```",
        {
            "entries": [
                {"sub_topic": "pets", "content": "a cat"},
                {"sub_topic": "sports", "content": "tennis"},
            ]
        },
    ),
    Case(
        "organize with no entries left",
        OrganizeAnswer,
        '{"entries": []}',
        Refused("entries"),
    ),
    # --- ShortenAnswer ---
    Case(
        "shorten with the index as text and raw newlines",
        ShortenAnswer,
        '{"entries": [{"index": "0", "content": "teaches\nchemistry"}]}',
        {"entries": [{"index": 0, "content": "teaches\nchemistry"}]},
    ),
    Case(
        "shorten with shortened text under another key, one item bad",
        ShortenAnswer,
        '{"entries": [{"id": 0, "shortened": "short"}, {"index": -1, "content": "bad index"}]}',
        {"entries": [{"index": 0, "content": "short"}]},
        dropped=1,
    ),
]


def _outcome(case: Case) -> dict[str, Any] | Refused:
    try:
        parsed = parse_answer_counted(case.text, case.model)
    except UnparsableAnswer as exc:
        return Refused(str(exc))
    return {"answer": parsed.answer.model_dump(), "dropped": parsed.dropped}


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_answer_parses_to_its_expected_result(case: Case) -> None:
    outcome = _outcome(case)
    if isinstance(case.expected, Refused):
        assert isinstance(outcome, Refused), outcome
        assert case.expected.reason in outcome.reason
    else:
        assert outcome == {"answer": case.expected, "dropped": case.dropped}


def test_the_corpus_covers_every_answer_model_and_most_is_recovered() -> None:
    assert len(CORPUS) >= 30
    every_model: list[type[BaseModel]] = [
        SummaryAnswer,
        FactsAnswer,
        DecisionsAnswer,
        TagsAnswer,
        OrganizeAnswer,
        ShortenAnswer,
    ]
    assert {c.model for c in CORPUS} == set(every_model)
    recovered = [c for c in CORPUS if not isinstance(_outcome(c), Refused)]
    assert len(recovered) / len(CORPUS) >= 0.9
