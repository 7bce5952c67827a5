"""profileUpdated refuses a crafted `since` as BAD_USER_INPUT naming it, never masked."""

from __future__ import annotations

from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.integration.test_crafted_cursors import (
    ADD,
    BY_ID,
    CHANGE_CURSORS,
    change_cursor_of,
    user_cursor_of,
)
from tests.live import LiveServer, subscribe
from tests.support import ProjectHandle

SUBSCRIBE = """
subscription($since: String) {
  profileUpdated(userId: "alice", since: $since) { cursor }
}
"""


async def test_crafted_since_is_bad_user_input(live: LiveServer, tenant: ProjectHandle) -> None:
    """One live server for every case of the change cursor, given as `since`."""
    for sub in ("a", "b"):
        await tenant.api.ok(ADD, sub=sub)
    change = await change_cursor_of(tenant.api)
    user = await user_cursor_of(tenant.api, BY_ID)
    refused: dict[str, Any] = {}
    for name, craft in CHANGE_CURSORS.items():
        since = craft(change, user)
        async with subscribe(live.ws_url, tenant.api_key, SUBSCRIBE, since=since) as changes:
            with pytest.raises(TransportQueryError) as raised:
                await anext(changes)
        errors = raised.value.errors or [{}]
        refused[name] = errors[0].get("extensions")
    expected = {"code": "BAD_USER_INPUT", "field": "since"}
    assert refused == dict.fromkeys(CHANGE_CURSORS, expected)
