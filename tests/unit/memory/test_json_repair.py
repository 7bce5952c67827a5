"""Lenient reading of the JSON in an LLM answer (memory/json_repair.py)."""

from __future__ import annotations

from typing import Any

import pytest

from powermemo_gql.memory.answer_shapes import canonical_key
from powermemo_gql.memory.json_repair import CutObject, json_values, without_reasoning


def _values(text: str) -> list[Any]:
    return [found.value for found in json_values(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', [{"a": 1}]),
        ('{"a": "x\\u00e9\\n"}', [{"a": "x\u00e9\n"}]),
        ('{"a": "C:\\dir"}', [{"a": "C:\\dir"}]),  # an invalid escape is kept as written
        ('{"a": 1, // a comment\n "b": 2}', [{"a": 1, "b": 2}]),
        ("{a: 'x', b: True, c: None, d: -1.5e2}", [{"a": "x", "b": True, "c": None, "d": -150.0}]),
        ('{"a": "x" "b": "y"}', [{"a": "x", "b": "y"}]),  # a missing comma
        ('{"a": [1, 2,, 3,],}', [{"a": [1, 2, 3]}]),
        ('{"action": update}', [{"action": "update"}]),  # a bare word value
        ('{"a": 1}\n{"b": 2}', [{"a": 1}, {"b": 2}]),
        ('see [note] and {braces} then {"a": 1}', [{"a": 1}]),
    ],
)
def test_values_are_read(text: str, expected: list[Any]) -> None:
    assert _values(text) == expected


def test_an_object_the_answer_ends_inside_is_marked_cut() -> None:
    [value] = _values('{"items": [{"a": 1}, {"a": 2, "b": "unfinish')
    assert isinstance(value, CutObject)
    items = value["items"]
    assert items[0] == {"a": 1}
    assert not isinstance(items[0], CutObject)
    assert isinstance(items[1], CutObject)
    assert items[1] == {"a": 2}


def test_an_unfinished_top_level_string_is_no_value() -> None:
    assert _values('"just text') == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>a {b}</think>answer", "answer"),
        ("<THINKING>x</THINKING> answer", "answer"),
        ("reasoning {x} without its opening tag</think>answer", "answer"),
        ("<think>unclosed reasoning answer", "unclosed reasoning answer"),
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ],
)
def test_reasoning_and_fences_are_taken_out(text: str, expected: str) -> None:
    assert without_reasoning(text).strip() == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("subTopic", "sub_topic"),
        ("SubTopic", "sub_topic"),
        ("sub-topic", "sub_topic"),
        ("Sub Topic", "sub_topic"),
        ("SUB_TOPIC", "sub_topic"),
        (" topic ", "topic"),
    ],
)
def test_keys_are_spelled_one_way(key: str, expected: str) -> None:
    assert canonical_key(key) == expected
