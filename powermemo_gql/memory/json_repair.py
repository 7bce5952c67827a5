"""JSON values found in an LLM answer, read leniently.

Small local models wrap their JSON in prose, code fences and `<think>` blocks, and bend
the syntax: single quotes, trailing or missing commas, raw newlines and unescaped quotes
inside strings, bare keys, Python literals, an answer cut off by the token limit. This
module reads what a reader would; what the values mean is parsing.py's business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_THINK_BLOCK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_LITERALS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_STRICT = json.JSONDecoder(strict=False)  # strict=False: raw control characters in strings


class CutObject(dict[str, Any]):
    """An object the answer ended inside of: what it holds may be incomplete."""


@dataclass(frozen=True)
class Found:
    value: Any
    start: int


def without_reasoning(text: str) -> str:
    """The answer without `<think>` blocks and code-fence markers."""
    text = _THINK_BLOCK.sub(" ", text)
    closing = list(_THINK_CLOSE.finditer(text))
    if closing:  # a reasoning block whose opening tag the server already stripped
        text = text[closing[-1].end() :]
    text = _THINK_OPEN.sub(" ", text)  # an unclosed block: its text is prose like any other
    return _FENCE.sub(" ", text)


def json_values(text: str) -> list[Found]:
    """Every top-level JSON object or array in `text`, in order."""
    text = without_reasoning(text)
    found: list[Found] = []
    pos = 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = _STRICT.raw_decode(text, start)
        except ValueError:
            try:
                value, end = _Reader(text, start).read()
            except _NotJSON:
                pos = start + 1
                continue
        found.append(Found(value, start))
        pos = end


class _NotJSON(Exception):
    pass


class _Ended(Exception):
    """The text ended inside a value."""


class _Reader:
    def __init__(self, text: str, pos: int) -> None:
        self._text = text
        self._pos = pos
        self._cut = False  # the text ended inside a container: close everything, stop reading

    def read(self) -> tuple[Any, int]:
        try:
            value = self._value(in_object=False)
        except _Ended as exc:
            raise _NotJSON from exc
        return value, self._pos

    def _skip(self) -> str:
        """Skip whitespace and comments; the next character, or "" at the end."""
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char.isspace():
                self._pos += 1
            elif text.startswith("//", self._pos):
                newline = text.find("\n", self._pos)
                self._pos = len(text) if newline < 0 else newline
            else:
                return char
        return ""

    def _value(self, in_object: bool) -> Any:
        char = self._skip()
        if not char:
            raise _Ended
        if char == "{":
            return self._object()
        if char == "[":
            return self._array()
        if char in "\"'":
            return self._string()
        number = _NUMBER.match(self._text, self._pos)
        if number:
            self._pos = number.end()
            literal = number.group()
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        word = _BARE_WORD.match(self._text, self._pos)
        if word and (word.group() in _LITERALS or in_object):
            self._pos = word.end()
            return _LITERALS.get(word.group(), word.group())  # a bare word: a string
        raise _NotJSON

    def _object(self) -> dict[str, Any]:
        self._pos += 1
        items: dict[str, Any] = {}
        while True:
            char = self._skip()
            if not char:
                self._cut = True
                return CutObject(items)
            if char == "}":
                self._pos += 1
                return items
            if char == ",":  # trailing, doubled or leading commas
                self._pos += 1
                continue
            try:
                key = self._key()
                if self._skip() not in (":", "="):
                    if self._pos >= len(self._text):
                        raise _Ended
                    raise _NotJSON
                self._pos += 1
                value = self._value(in_object=True)
            except _Ended:
                self._cut = True
                return CutObject(items)
            items[key] = value
            if self._cut:
                return CutObject(items)

    def _key(self) -> str:
        char = self._skip()
        if char in "\"'":
            return self._string()
        word = _BARE_WORD.match(self._text, self._pos)
        if not word:
            raise _NotJSON
        self._pos = word.end()
        return word.group()

    def _array(self) -> list[Any]:
        self._pos += 1
        items: list[Any] = []
        while True:
            char = self._skip()
            if not char:
                self._cut = True
                return items
            if char == "]":
                self._pos += 1
                return items
            if char == ",":
                self._pos += 1
                continue
            try:
                items.append(self._value(in_object=False))
            except _Ended:
                self._cut = True
                return items
            if self._cut:
                return items

    def _string(self) -> str:
        text = self._text
        quote = text[self._pos]
        self._pos += 1
        out: list[str] = []
        while self._pos < len(text):
            char = text[self._pos]
            if char == "\\" and self._pos + 1 < len(text):
                self._pos += 1
                out.append(self._escape())
                continue
            self._pos += 1
            if char == quote and self._closes():
                return "".join(out)
            out.append(char)  # raw newlines and tabs, and quotes that cannot end the string
        raise _Ended

    def _escape(self) -> str:
        text = self._text
        char = text[self._pos]
        self._pos += 1
        if char == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[self._pos : self._pos + 4]):
            self._pos += 4
            return chr(int(text[self._pos - 4 : self._pos], 16))
        if char in _ESCAPES:
            return _ESCAPES[char]
        return char if char in "\"'\\" else "\\" + char

    def _closes(self) -> bool:
        """Whether a quote just read ends its string: only where JSON could go on after it."""
        rest = self._text[self._pos :].lstrip()
        return not rest or rest[0] in ",:}]\"'"
