"""schemathesis hooks for `st run schema.graphql` (tests/e2e/test_conformance.py).

- The JSON scalar: generated as small objects, and now and then as other JSON values, which
  the API must refuse as InvalidInput, not crash on.
- The check `no_internal_error`: a server error is an HTTP 5xx or an error the server masked
  as INTERNAL_SERVER_ERROR. Refusals the API makes on purpose (FORBIDDEN, BAD_USER_INPUT,
  validation errors) are answers, not server errors.
"""

from __future__ import annotations

from typing import Any

import graphql
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_strings = st.text(max_size=20).map(nodes.String)


def _object(pairs: dict[str, graphql.ValueNode]) -> graphql.ValueNode:
    return nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value)
            for key, value in pairs.items()
        ]
    )


schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.dictionaries(_keys, _strings, max_size=4).map(_object),
        _strings,
        st.integers(-1000, 1000).map(nodes.Int),
        st.lists(_strings, max_size=3).map(nodes.List),
    ),
)


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> None:
    """The server never fails: no 5xx, no masked internal error."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return
    entries = body if isinstance(body, list) else [body]
    for entry in entries:
        for error in (entry or {}).get("errors") or []:
            if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR":
                raise AssertionError(f"internal server error at {error.get('path')}")
