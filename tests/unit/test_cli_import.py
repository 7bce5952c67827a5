"""import-chats' retry and split rules, with a stand-in for the client."""

from __future__ import annotations

from typing import Any, cast

import pytest
from rich.console import Console

from powermemo_gql.cli_import import MAX_WAITS, Chat, Importer, ImportStopped, Outcome
from powermemo_gql.client import Powermemo
from powermemo_gql.client.errors import (
    AuthenticationError,
    InvalidInputError,
    RateLimitedError,
)


def _importer(slept: list[float]) -> Importer:
    return Importer("http://x", "k", Console(quiet=True), sleep=slept.append)


def test_rate_limits_are_waited_out_for_their_retry_after() -> None:
    slept: list[float] = []
    answers: list[Exception | str] = [
        RateLimitedError("RATE_LIMITED", "slow down", status=429, retry_after=3),
        RateLimitedError("RATE_LIMITED", "slow down", status=429, retry_after=7),
        "done",
    ]

    def send() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert _importer(slept).call(send) == "done"
    assert slept == [3, 7]


def test_waiting_is_bounded() -> None:
    slept: list[float] = []

    def send() -> str:
        raise RateLimitedError("RATE_LIMITED", "slow down", status=429, retry_after=1)

    with pytest.raises(ImportStopped, match="rate limited after"):
        _importer(slept).call(send)
    assert len(slept) == MAX_WAITS


def test_a_refused_key_stops_at_once() -> None:
    slept: list[float] = []

    def send() -> str:
        raise AuthenticationError("UNAUTHENTICATED", "Invalid or revoked token", status=401)

    with pytest.raises(ImportStopped, match="refused the API key"):
        _importer(slept).call(send)
    assert slept == []


class _Server:
    """Refuses any batch holding the line marked bad as a whole, as a variable error does."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def execute(self, _document: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.sizes.append(len(variables))
        if any(v["userId"] == "bad" for v in variables.values()):
            raise InvalidInputError("BAD_USER_INPUT", "Variable '$i1' got invalid value")
        return {
            name.replace("i", "b"): {"__typename": "InsertBlobPayload", "replayed": False}
            for name in variables
        }


def test_a_batch_refused_as_a_whole_is_resent_line_by_line() -> None:
    chats = [
        Chat(n, "bad" if n == 4 else "alice", {"userId": "bad" if n == 4 else "alice"})
        for n in (1, 2, 4, 5)
    ]
    server = _Server()
    outcome = Outcome()
    _importer([]).insert(cast(Powermemo, server), chats, outcome)
    assert server.sizes == [4, 1, 1, 1, 1]
    assert outcome.stored == 3
    assert outcome.failures == {4: "BAD_USER_INPUT: Variable '$i1' got invalid value"}
