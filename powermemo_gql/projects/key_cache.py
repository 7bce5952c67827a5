"""API keys recently seen, so that most requests authenticate without a database lookup.

An entry lives at most `ttl` seconds. A revocation drops the entries it names at once: on
the instance that revoked (before it answers) and, through the broker, on every other one
(projects/revocation.py). When the broker link was lost, messages may have been missed, so
the watch clears the whole cache as it listens again. What nobody announces (the CLI on a
deployment without Redis) the watch finds by asking the database every few seconds which
cached keys still work: one query per instance, not one per request; `ttl` bounds the rest.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from powermemo_gql.projects.auth import Principal
from powermemo_gql.projects.revocation import Revocation

MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(
        self,
        ttl: float,
        max_entries: int = MAX_ENTRIES,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._now = now
        # key hash -> (principal, expiry); oldest insert first
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        principal, expires = entry
        if self._now() >= expires:
            del self._entries[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: Principal) -> None:
        if not self.enabled or principal.is_root:
            return
        self._entries[key_hash] = (principal, self._now() + self._ttl)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, revocation: Revocation) -> None:
        """Drop every entry of a revoked key or of a key of a revoked project."""
        gone = [
            key_hash
            for key_hash, (principal, _) in self._entries.items()
            if principal.api_key_id in revocation.api_key_ids
            or principal.project_id in revocation.project_ids
        ]
        for key_hash in gone:
            del self._entries[key_hash]

    def key_ids(self) -> set[uuid.UUID]:
        return {p.api_key_id for p, _ in self._entries.values() if p.api_key_id is not None}

    def clear(self) -> None:
        self._entries.clear()
