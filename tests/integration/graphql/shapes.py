"""Documents of the shapes that cost parsers and validators the most, as large as the default
limits let them be (5,000 tokens, 100,000 characters, depth 12, 30 aliases, 20 directives,
2,000 fields)."""

from __future__ import annotations

from collections.abc import Callable

from graphql import Lexer, Source, TokenKind

TOKENS = 2000
REFUSED_BY_PARSER = "GRAPHQL_PARSE_FAILED"  # the parser's own token and nesting limits


def fan_out(levels: int) -> str:
    """Each fragment spreads the next one twice: 2**levels fields once expanded."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def _within_tokens(document: str) -> bool:
    """Counted by the lexer (the parser stops at its nesting limit before counting)."""
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
        if count >= TOKENS:  # one spare, for how the parser counts the end
            return False
    return True


def largest(make: Callable[[int], str]) -> str:
    """make(n) for the largest n whose document the token limit still lets through."""
    low, high = 1, 2
    while _within_tokens(make(high)):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _within_tokens(make(middle)) else (low, middle)
    return make(low)


def _spread_each(unit: str) -> Callable[[int], str]:
    """n fragments holding `unit`, all spread at the root."""

    def make(n: int) -> str:
        spreads = " ".join(f"...W{i}" for i in range(n))
        fragments = " ".join(f"fragment W{i} on Query {{ {unit} }}" for i in range(n))
        return f"{{ {spreads} }} {fragments}"

    return make


def _chain(n: int, cycle: bool = False) -> str:
    links = " ".join(f"fragment C{i} on Query {{ ...C{i + 1} }}" for i in range(n))
    end = "...C0" if cycle else "__typename"
    return f"{{ ...C0 }} {links} fragment C{n} on Query {{ {end} }}"


def _nested(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"user {{ blobs {{ nodes {{ {inner} }} }} }}"
    return f'{{ blob(id: "QmxvYjp4") {{ {inner} }} }}'


def _repeats_inside_repeats(n: int) -> str:
    inner = " ".join(["buffer { status }"] * n)
    return "{ " + " ".join([f'user(userId: "u") {{ {inner} }}'] * n) + " }"


def _nested_fan_out(levels: int) -> str:
    """Fan-out through distinct fields (a: and b:), so nothing repeats at one path."""
    fragments = " ".join(
        f"fragment N{i} on User {{ a: blobs {{ nodes {{ user {{ ...N{i + 1} }} }} }} "
        f"b: blobs {{ nodes {{ user {{ ...N{i + 1} }} }} }} }}"
        for i in range(levels)
    )
    return f'{{ user(userId: "u") {{ ...N0 }} }} {fragments} fragment N{levels} on User {{ id }}'


# name -> (document, operationName, the extensions.code refusing it; None: it runs)
SHAPES: dict[str, tuple[str, str | None, str | None]] = {
    "fan-out 22": (fan_out(22), None, "QUERY_TOO_COMPLEX"),
    "fan-out 30": (fan_out(30), None, "QUERY_TOO_COMPLEX"),
    "fan-out through nested fields": (_nested_fan_out(3), None, None),
    "one field repeated": (
        largest(lambda n: "{ " + " ".join(["health { ok }"] * n) + " }"),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "a leaf repeated": (
        largest(lambda n: "{ " + " ".join(["__typename"] * n) + " }"),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "a field repeated up to the overlap limit": (
        "{ " + " ".join(["health { ok }"] * 70) + " }",
        None,
        None,
    ),
    "repeats inside repeats": (largest(_repeats_inside_repeats), None, "QUERY_TOO_COMPLEX"),
    "many fragments of one field": (
        largest(_spread_each("health { ok }")),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "many fragments of distinct fields": (
        largest(_spread_each("health { ok database pubsub version uptimeSeconds }")),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "a chain of fragments at the nesting limit": (_chain(99), None, None),
    "a long chain of fragments": (largest(_chain), None, "QUERY_TOO_COMPLEX"),
    "a long cycle of fragments": (
        largest(lambda n: _chain(n, cycle=True)),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "nesting at the depth limit": (_nested(3), None, None),
    "nesting past the depth limit": (_nested(8), None, "QUERY_TOO_COMPLEX"),
    "nesting as deep as the tokens allow": (
        largest(lambda n: "{ " + "health { " * n + "ok" + " }" * n + " }"),
        None,
        REFUSED_BY_PARSER,
    ),
    "a list value as deep as the tokens allow": (
        largest(lambda n: "{ users(search: " + "[" * n + '"x"' + "]" * n + ") { nodes { id } } }"),
        None,
        REFUSED_BY_PARSER,
    ),
    "many variables": (
        largest(
            lambda n: "query(" + " ".join(f"$v{i}: Int" for i in range(n)) + ") { __typename }"
        ),
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "many aliases": (
        largest(lambda n: "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "many directives": (
        largest(lambda n: "{ " + " ".join(["__typename @include(if: true)"] * n) + " }"),
        None,
        "QUERY_TOO_COMPLEX",
    ),
    "operations up to their limit": (
        " ".join(f"query Q{i} {{ __typename }}" for i in range(50)),
        "Q0",
        None,
    ),
    "many operations": (
        largest(lambda n: " ".join(f"query Q{i} {{ __typename }}" for i in range(n))),
        "Q0",
        "QUERY_TOO_COMPLEX",
    ),
    "many unused fragments": (
        largest(
            lambda n: (
                "{ __typename } "
                + " ".join(f"fragment U{i} on Query {{ __typename }}" for i in range(n))
            )
        ),
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "the longest string": ('{ user(userId: "' + "x" * 99_900 + '") { id } }', None, None),
    "past the length limit": (
        '{ user(userId: "' + "x" * 100_001 + '") { id } }',
        None,
        "QUERY_TOO_LARGE",
    ),
}
