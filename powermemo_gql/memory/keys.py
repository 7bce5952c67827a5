"""Profile keys (topic / sub_topic): one spelling each, and reuse of the keys a user has.

Models paraphrase keys between flushes (`interest/hiking`, then `Interests/hiking_trips`):
the extract prompt lists the user's keys to reuse, keys are normalised here, and a new key
close to an existing one goes to the merge step with that entry, which decides whether the
fact belongs to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Key = tuple[str, str]

_SEPARATORS = re.compile(r"[\s\-./]+")
_NOT_WORD = re.compile(r"[^\w]+")


def normalise(name: str) -> str:
    """snake_case, lower case: `Hiking Trips` and `hiking-trips` are `hiking_trips`."""
    name = _SEPARATORS.sub("_", name.strip().lower())
    return _NOT_WORD.sub("", name).strip("_") or name.strip()


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _words(name: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in name.split("_") if w)


def similar(a: str, b: str) -> bool:
    """Whether two normalised names likely mean the same: equal up to plurals, or the words
    of one contain all the words of the other (`hiking` ~ `hiking_trips`)."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return False
    return wa <= wb or wb <= wa


class KeyIndex:
    """The keys a user's profile has, and the configured slots: what new keys are matched to."""

    def __init__(self, existing: Iterable[Key], slots: Iterable[Key] = ()) -> None:
        self.existing: list[Key] = list(dict.fromkeys(existing))
        self._known = set(self.existing)
        # Spellings to reuse: the user's keys first, then the configured slots'.
        self._spellings = list(dict.fromkeys([*self.existing, *slots]))
        self._topics = list(dict.fromkeys(t for t, _ in self._spellings))

    def topic(self, raw: str) -> str:
        """A known topic this name means (up to case, separators and plural), else itself."""
        name = normalise(raw)
        for topic in self._topics:
            if normalise(topic) == name or _words(topic) == _words(name):
                return topic
        return name

    def key(self, raw_topic: str, raw_sub_topic: str) -> Key:
        """The key a fact is filed under: a known spelling where one matches exactly."""
        topic = self.topic(raw_topic)
        sub_topic = normalise(raw_sub_topic)
        if not sub_topic:
            return topic, sub_topic
        for known_topic, known_sub in self._spellings:
            if known_topic == topic and (
                known_sub == sub_topic or _words(known_sub) == _words(sub_topic)
            ):
                return known_topic, known_sub
        return topic, sub_topic

    def close_to(self, key: Key) -> Key | None:
        """An existing key of the same topic this new key is close to, if one."""
        if key in self._known:
            return None
        candidates = [k for k in self.existing if k[0] == key[0] and similar(k[1], key[1])]
        # The closest: the one sharing the most words.
        candidates.sort(key=lambda k: -len(_words(k[1]) & _words(key[1])))
        return candidates[0] if candidates else None

    def describe(self) -> str:
        """The existing keys, compactly: `topic: sub, sub; topic: sub`."""
        by_topic: dict[str, list[str]] = {}
        for topic, sub_topic in self.existing:
            by_topic.setdefault(topic, []).append(sub_topic)
        return "; ".join(f"{t}: {', '.join(subs)}" for t, subs in by_topic.items())
