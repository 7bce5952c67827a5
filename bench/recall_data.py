"""The labelled retrieval set of the recall benchmark: users, their memories, and queries
that name the memories they must find. Deterministic for a seed.

Memories come in the three kinds the server stores: profile entries (topic / sub-topic /
content), events (a summary of dated notes, one per line: "- Went hiking in the Alps [said
2024-03-06]") and facts (the note lines of an event, as the server splits them). Queries:

- paraphrase: a natural question sharing no content word with any of its targets (after
  lower-casing, stop words removed and simple stemming); checked here, or generation fails;
- lexical: a question sharing some words with its target;
- timed: a question asked with a happened-after / happened-before window around its target,
  where a decoy note of the same kind, outside the window, shares more of its words.

Every user holds one variant of every profile and note facet (bench/recall_bank.py), so the
other facets of a topic are near misses, and many users share each variant.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.recall_bank import NOTE_FACETS, PROFILE_FACETS, TIMED_FACETS, Variant

_STOP_TEXT = """
a about after again all am an and any are as at be been before being but by can could did do
does doing done during each ever for from get gets go going got had has have having he her
here hers him his how i if in into is it its just me more most my no not now of off on once
only or other our out over own same she should so some such than that the their them then
there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your said
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# The memories' dates fall within these years; events are spaced this far apart.
FIRST_DAY = datetime(2023, 1, 9, tzinfo=UTC)
EVENT_SPACING = timedelta(days=97)
EVENTS_PER_USER = 4
NOTES_PER_EVENT = 3
TIMED_PER_USER = 3
WINDOW = timedelta(days=1)  # a timed query's window reaches this far around its target's day
LEXICAL_SHARE = 0.4  # of the items, the share that also get a lexical query
ARRANGE_ATTEMPTS = 200


def stem(word: str) -> str:
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + keep
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running -> runn -> run
    return word.rstrip("e") if len(word) > 3 else word


def content_words(text: str) -> set[str]:
    """The stemmed words of a text that are not stop words."""
    return {stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS}


@dataclass(frozen=True)
class User:
    external_id: str
    pronoun: str  # she / he
    possessive: str  # her / his


@dataclass(frozen=True)
class Memory:
    id: str
    user: str  # the user's external id
    kind: str  # profile | event | fact
    content: str  # the entry's content, the event's summary, the fact's line
    topic: str = ""
    sub_topic: str = ""
    happened_from: datetime | None = None
    happened_to: datetime | None = None
    event_id: str = ""  # a fact's event

    @property
    def indexed_text(self) -> str:
        """What the server embeds for the row (recall/sources.text_of)."""
        if self.kind == "profile":
            return f"{self.topic} / {self.sub_topic}: {self.content}"
        return self.content


@dataclass(frozen=True)
class Query:
    id: str
    user: str
    text: str
    kind: str  # paraphrase | lexical | timed
    targets: tuple[str, ...]  # memory ids; a hit on any of them is a find
    happened_after: datetime | None = None
    happened_before: datetime | None = None
    decoys: tuple[str, ...] = ()  # timed: memories outside the window that match better


@dataclass(frozen=True)
class RecallSet:
    users: tuple[User, ...]
    memories: tuple[Memory, ...]
    queries: tuple[Query, ...]

    def memory(self, memory_id: str) -> Memory:
        return self._by_id()[memory_id]

    def _by_id(self) -> dict[str, Memory]:
        return {m.id: m for m in self.memories}

    def of_user(self, external_id: str) -> list[Memory]:
        return [m for m in self.memories if m.user == external_id]


@dataclass
class _Note:
    text: str
    variant: Variant | None  # None for the notes of a timed pair
    timed: int = -1  # the index of its timed pair, or -1
    decoy: bool = False


def generate(users: int = 12, seed: int = 7) -> RecallSet:
    """The whole set; raises ValueError if a promise of the module doc does not hold."""
    made_users: list[User] = []
    memories: list[Memory] = []
    queries: list[Query] = []
    for number in range(users):
        rng = random.Random(seed * 1_000 + number)  # noqa: S311  (benchmark data)
        pronoun, possessive = ("she", "her") if number % 2 == 0 else ("he", "his")
        user = User(f"recall-user-{number:02d}", pronoun, possessive)
        made_users.append(user)
        user_memories, user_queries = _user_set(user, rng)
        memories += user_memories
        queries += user_queries
    recall_set = RecallSet(tuple(made_users), tuple(memories), tuple(queries))
    check(recall_set)
    return recall_set


def _user_set(user: User, rng: random.Random) -> tuple[list[Memory], list[Query]]:
    def said(question: str) -> str:
        return question.format(p=user.pronoun, pos=user.possessive)

    prefix = user.external_id.rsplit("-", 1)[1]
    memories: list[Memory] = []
    items: list[tuple[Variant, tuple[str, ...]]] = []  # what gets a paraphrase (+ lexical)
    for index, facet in enumerate(PROFILE_FACETS):
        variant = rng.choice(facet.variants)
        entry = Memory(
            f"u{prefix}-p{index}",
            user.external_id,
            "profile",
            variant.text,
            facet.topic,
            facet.sub_topic,
        )
        memories.append(entry)
        items.append((variant, (entry.id,)))
    notes = [_Note(variant.text, variant) for variant in map(rng.choice, _facet_variants())]
    timed = rng.sample(range(len(TIMED_FACETS)), TIMED_PER_USER)
    for pair, facet_index in enumerate(timed):
        timed_facet = TIMED_FACETS[facet_index]
        chosen = rng.choice([i for i in range(len(timed_facet.variants)) if i != timed_facet.decoy])
        notes.append(_Note(timed_facet.variants[chosen], None, pair))
        notes.append(_Note(timed_facet.variants[timed_facet.decoy], None, pair, decoy=True))
    events = _arrange(notes, rng, lambda groups: _conflicts(groups, said))
    where: dict[int, tuple[str, str]] = {}  # id(note) -> (fact id, event id)
    dates: dict[str, datetime] = {}
    for number, group in enumerate(events):
        day = FIRST_DAY + number * EVENT_SPACING + timedelta(days=rng.randrange(30))
        start, end = day.replace(hour=10), day.replace(hour=10, minute=20)
        event_id = f"u{prefix}-e{number}"
        lines = [f"{note.text} [said {day.date().isoformat()}]" for note in group]
        summary = "\n".join(f"- {line}" for line in lines)
        memories.append(
            Memory(
                event_id, user.external_id, "event", summary, happened_from=start, happened_to=end
            )
        )
        dates[event_id] = day
        for position, (note, line) in enumerate(zip(group, lines, strict=True)):
            fact_id = f"{event_id}.f{position}"
            memories.append(
                Memory(
                    fact_id,
                    user.external_id,
                    "fact",
                    line,
                    happened_from=start,
                    happened_to=end,
                    event_id=event_id,
                )
            )
            where[id(note)] = (fact_id, event_id)
            if note.variant is not None:
                items.append((note.variant, (fact_id, event_id)))
    queries: list[Query] = []
    for variant, targets in items:
        queries.append(_query(user, len(queries), said(variant.paraphrase), "paraphrase", targets))
        if rng.random() < LEXICAL_SHARE:
            queries.append(_query(user, len(queries), said(variant.lexical), "lexical", targets))
    for pair, facet_index in enumerate(timed):
        target = next(n for n in notes if n.timed == pair and not n.decoy)
        decoy = next(n for n in notes if n.timed == pair and n.decoy)
        day = dates[where[id(target)][1]]
        queries.append(
            Query(
                f"u{prefix}-q{len(queries)}",
                user.external_id,
                said(TIMED_FACETS[facet_index].question),
                "timed",
                where[id(target)],
                happened_after=day - WINDOW,
                happened_before=day + timedelta(days=1) + WINDOW,
                decoys=where[id(decoy)],
            )
        )
    return memories, queries


def _facet_variants() -> Iterable[tuple[Variant, ...]]:
    return (facet.variants for facet in NOTE_FACETS)


def _query(user: User, number: int, text: str, kind: str, targets: tuple[str, ...]) -> Query:
    prefix = user.external_id.rsplit("-", 1)[1]
    return Query(f"u{prefix}-q{number}", user.external_id, text, kind, targets)


def _arrange(
    notes: list[_Note], rng: random.Random, conflicts: Callable[[list[list[_Note]]], bool]
) -> list[list[_Note]]:
    """The notes in events of NOTES_PER_EVENT, the two notes of a timed pair in different
    events, and no paraphrase sharing a word with another note of its event."""
    for _attempt in range(ARRANGE_ATTEMPTS):
        shuffled = notes[:]
        rng.shuffle(shuffled)
        groups = [
            shuffled[i : i + NOTES_PER_EVENT] for i in range(0, len(shuffled), NOTES_PER_EVENT)
        ]
        split = all(
            len({n.timed for n in group if n.timed >= 0}) == len([n for n in group if n.timed >= 0])
            for group in groups
        )
        if len(groups) == EVENTS_PER_USER and split and not conflicts(groups):
            return groups
    raise ValueError(f"no arrangement of the notes in {ARRANGE_ATTEMPTS} attempts")


def _conflicts(groups: list[list[_Note]], said: Callable[[str], str]) -> bool:
    for group in groups:
        summary = content_words(" ".join(n.text for n in group))
        for note in group:
            if note.variant is not None and content_words(said(note.variant.paraphrase)) & summary:
                return True
    return False


def check(recall_set: RecallSet) -> None:
    """The module's promises, raised as ValueError with the first query that breaks one."""
    by_id = {m.id: m for m in recall_set.memories}
    if len(by_id) != len(recall_set.memories):
        raise ValueError("memory ids are not unique")
    for user in recall_set.users:
        texts = [(m.kind, m.content) for m in recall_set.of_user(user.external_id)]
        if len(set(texts)) != len(texts):
            raise ValueError(f"{user.external_id}: two memories of one kind share a text")
    for query in recall_set.queries:
        targets = [by_id[t] for t in query.targets]
        if any(t.user != query.user for t in targets):
            raise ValueError(f"{query.id}: a target of another user")
        words = content_words(query.text)
        shared = set().union(*(words & content_words(t.indexed_text) for t in targets))
        if query.kind == "paraphrase" and shared:
            raise ValueError(f"{query.id} {query.text!r} shares {sorted(shared)} with a target")
        if query.kind == "lexical" and not shared:
            raise ValueError(f"{query.id} {query.text!r} shares no word with its target")
        if query.kind == "timed":
            _check_timed(query, targets, [by_id[d] for d in query.decoys])


def _check_timed(query: Query, targets: list[Memory], decoys: list[Memory]) -> None:
    after, before = query.happened_after, query.happened_before
    assert after is not None
    assert before is not None
    if not decoys:
        raise ValueError(f"{query.id}: a timed query without a decoy")
    for memory in targets:
        if not in_window(memory, after, before):
            raise ValueError(f"{query.id}: target {memory.id} outside the window")
    for memory in decoys:
        if in_window(memory, after, before):
            raise ValueError(f"{query.id}: decoy {memory.id} inside the window")
    words = content_words(query.text)
    target_fact = next(t for t in targets if t.kind == "fact")
    decoy_fact = next(d for d in decoys if d.kind == "fact")
    if len(words & content_words(decoy_fact.content)) <= len(
        words & content_words(target_fact.content)
    ):
        raise ValueError(f"{query.id}: its decoy does not match it better than its target")


def in_window(memory: Memory, after: datetime, before: datetime) -> bool:
    """The server's time filter: the memory's span overlaps [after, before]."""
    assert memory.happened_from is not None
    assert memory.happened_to is not None
    return memory.happened_to >= after and memory.happened_from <= before


# Scoring


def first_rank(ranking: Sequence[str], targets: Sequence[str]) -> int | None:
    """The 1-based place of the first target in a ranking, or None."""
    return next((place for place, doc in enumerate(ranking, 1) if doc in targets), None)


def scores(ranks: Sequence[int | None]) -> tuple[float, float, float]:
    """recall@1, recall@5 and MRR of first-target ranks."""
    n = max(1, len(ranks))
    return (
        sum(1 for r in ranks if r == 1) / n,
        sum(1 for r in ranks if r is not None and r <= 5) / n,
        sum(1 / r for r in ranks if r is not None) / n,
    )


# The latency user: many memories of the same shape, made from the set's own words


@dataclass(frozen=True)
class BulkEvent:
    notes: tuple[str, ...]
    day: datetime


def bulk_memories(
    count: int, seed: int = 7, event_share: float = 0.1, notes_per_event: int = 4
) -> tuple[list[tuple[str, str, str]], list[BulkEvent]]:
    """About `count` memories for one user: profile entries (topic, unique sub-topic,
    content) and events of `notes_per_event` dated notes (each event and note one memory),
    worded from the bank's vocabulary. Deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311  (benchmark data)
    vocabulary = sorted(
        {w for f in PROFILE_FACETS for x in f.variants for w in x.text.lower().split()}
        | {w for f in NOTE_FACETS for x in f.variants for w in x.text.lower().split()}
    )
    topics = sorted({f.topic for f in PROFILE_FACETS})

    def sentence() -> str:
        return " ".join(rng.sample(vocabulary, rng.randint(5, 11))).capitalize()

    event_count = round(count * event_share / (notes_per_event + 1))
    events = [
        BulkEvent(
            tuple(sentence() for _ in range(notes_per_event)),
            FIRST_DAY + timedelta(days=rng.randrange(730)),
        )
        for _ in range(event_count)
    ]
    entries = [
        (topics[i % len(topics)], f"note_{i:05d}", sentence())
        for i in range(count - event_count * (notes_per_event + 1))
    ]
    return entries, events
