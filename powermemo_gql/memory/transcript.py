"""What a flush shows the LLM: the buffer's text, dated, compactly, in chunks that fit a prompt.

Every line carries when it was said: a chat message's `created_at`, else its blob's insertion
time. The rendering puts a date header where the day changes and a time only where it matters
(the first line of a day, and after an hour's pause), so dates cost a few tokens per day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.core.tokens import count_tokens, split_by_tokens

# A pause this long between two lines shows the time again.
TIME_SHOWN_AFTER = timedelta(hours=1)
# Tokens kept free in a chunk for the date header and time its first line may need.
_HEADER_TOKENS = 16


@dataclass(frozen=True)
class Line:
    said_at: datetime  # aware
    speaker: str | None
    text: str


def lines_of(blob_type: BlobType, payload: dict[str, Any], inserted_at: datetime) -> list[Line]:
    """The lines of a processable blob, each dated."""
    if blob_type is BlobType.CHAT:
        return [
            Line(
                datetime.fromisoformat(m["created_at"]) if "created_at" in m else inserted_at,
                m.get("alias") or m["role"],
                m["content"],
            )
            for m in payload["messages"]
        ]
    if blob_type is BlobType.TRANSCRIPT:
        return [Line(inserted_at, s.get("speaker"), s["text"]) for s in payload["segments"]]
    if blob_type in (BlobType.DOCUMENT, BlobType.CODE):
        title = payload.get("title")
        text = f"{title}\n\n{payload['content']}" if title else str(payload["content"])
        return [Line(inserted_at, None, text)]
    raise ValueError(f"{blob_type} blobs carry no text")


def span(lines: Iterable[Line]) -> tuple[datetime, datetime] | None:
    """The first and last time anything in `lines` was said."""
    times = [line.said_at for line in lines]
    return (min(times), max(times)) if times else None


class _Renderer:
    """Renders lines one by one, remembering the day and time last shown."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.day: str | None = None
        self.shown: datetime | None = None

    def render(self, line: Line) -> str:
        local = line.said_at.astimezone(self.zone)
        day = local.strftime("%Y-%m-%d %a")
        head = ""
        if day != self.day:
            head = f"[{day}]\n"
            self.day, self.shown = day, None
        stamp = ""
        if self.shown is None or local - self.shown >= TIME_SHOWN_AFTER:
            stamp = local.strftime("%H:%M ")
            self.shown = local
        who = f"{line.speaker}: " if line.speaker else ""
        return f"{head}{stamp}{who}{line.text}\n"


def render(lines: Sequence[Line], zone: ZoneInfo) -> str:
    renderer = _Renderer(zone)
    return "".join(renderer.render(line) for line in lines)


def chunks(lines: Sequence[Line], budget: int, zone: ZoneInfo) -> list[str]:
    """The rendered lines in pieces of at most `budget` tokens each; a line too long for one
    piece is split across several, each dated again."""
    room = max(1, budget - _HEADER_TOKENS)
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    renderer = _Renderer(zone)
    for line in _split_long(lines, room):
        text = renderer.render(line)
        cost = count_tokens(text)
        if current and used + cost > budget:
            pieces.append("".join(current))
            # The next piece starts on its own: show its date and time again.
            renderer = _Renderer(zone)
            text = renderer.render(line)
            cost = count_tokens(text)
            current, used = [], 0
        current.append(text)
        used += cost
    if current:
        pieces.append("".join(current))
    return pieces


def _split_long(lines: Sequence[Line], room: int) -> Iterable[Line]:
    for line in lines:
        if count_tokens(line.text) <= room:
            yield line
            continue
        # 3% slack: a piece may re-encode a token or two longer than its cut.
        for part in split_by_tokens(line.text, room * 97 // 100):
            yield Line(line.said_at, line.speaker, part)
