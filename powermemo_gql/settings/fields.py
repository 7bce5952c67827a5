"""What the option groups share: the field of a duration in seconds."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def seconds(
    default: float, *, most: float | None = None, zero: bool = False, description: str
) -> Any:
    """A duration option, in seconds: more than 0 (at least 0 with `zero`), at most `most`."""
    return Field(
        default=default,
        gt=None if zero else 0,
        ge=0 if zero else None,
        le=most,
        description=description,
    )
