"""graphql-cop's probes against a production-mode server: none of them finds anything.

graphql-cop (github.com/dolevf/graphql-cop) is not on any package registry, so each of its
probes is done here as it does it: the same request (body, method, media type, headers) and
the same condition for a finding. The probes run with a project key, as `graphql-cop -H
'{"Authorization": "Bearer ..."}'` would, which is the stronger case: an anonymous request is
refused before GraphQL runs. Limits are documented in docs/graphql.md ("Limits").
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN, Api, create_project


@dataclass(frozen=True)
class Target:
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def post_json(self, body: Any) -> Any:
        """graphql-cop's graph_query: a JSON POST; an unreadable answer counts as {}."""
        response = await self.client.post("/graphql", json=body, headers=self.headers)
        try:
            return response.json()
        except ValueError:
            return {}

    async def query(self, document: str) -> Any:
        return await self.post_json({"query": document})


@pytest.fixture(params=["project-key", "anonymous"])
async def production(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Target]:
    app = create_app(make_settings(database_url, mode="production"))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        headers = {"User-Agent": "graphql-cop/1.13", "Accept": "*/*"}
        if request.param == "project-key":
            project = await create_project(app, Api(app, ROOT_TOKEN), uuid.uuid4().hex)
            headers["Authorization"] = f"Bearer {project.api_key}"
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            yield Target(client, headers)


def _get(value: Any, *path: str | int) -> Any:
    """value[path[0]][path[1]]..., or None where graphql-cop's try/except would give up."""
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


async def alias_overloading(target: Target) -> bool:
    aliases = "".join(f"alias{i}:__typename \n" for i in range(101))
    return bool(_get(await target.query("query cop { " + aliases + " }"), "data", "alias100"))


async def batch_queries(target: Target) -> bool:
    answer = await target.post_json([{"query": "query cop { __typename }"}] * 11)
    data = answer.get("data", []) if isinstance(answer, dict) else answer
    return isinstance(data, list) and len(data) >= 10


async def directive_overloading(target: Target) -> bool:
    answer = await target.query("query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }")
    errors = _get(answer, "errors")
    return isinstance(errors, list) and len(errors) == 10


async def field_duplication(target: Target) -> bool:
    answer = await target.query("query cop { " + "__typename \n" * 500 + "} ")
    return bool(_get(answer, "data", "__typename"))


async def circular_introspection(target: Target) -> bool:
    nested = "query cop { __schema { types { fields { type { fields { type { fields { type "
    nested += "{ fields { type { name } } } } } } } } } } }"
    types = _get(await target.query(nested), "data", "__schema", "types")
    return isinstance(types, list) and len(types) > 25


async def circular_fragment(target: Target) -> bool:
    document = """
      query cop { __schema { ...A } }
      fragment A on __Schema { __typename ...B }
      fragment B on __Schema { ...A }
    """
    return "errors" not in await target.query(document)


async def field_suggestions(target: Target) -> bool:
    message = _get(await target.query("query cop { __schema { directive } }"), "errors", 0)
    return "Did you mean" in str(_get(message, "message") or "")


async def introspection(target: Target) -> bool:
    answer = await target.query("query cop { __schema { types { name fields { name } } } }")
    return bool(_get(answer, "data", "__schema", "types"))


async def graphiql(target: Target) -> bool:
    heuristics = ("graphiql.min.css", "GraphQL Playground", "GraphiQL", "graphql-playground")
    for path in ("/graphiql", "/playground", "/console", "/graphql"):
        response = await target.client.get(path, headers=target.headers, follow_redirects=True)
        if any(word in response.text for word in heuristics):
            return True
    return False


async def _get_query(target: Target, document: str) -> bool:
    response = await target.client.get(
        "/graphql", params={"query": document}, headers=target.headers, follow_redirects=True
    )
    try:
        return bool(_get(response.json(), "data", "__typename"))
    except ValueError:
        return False


async def get_method_queries(target: Target) -> bool:
    return await _get_query(target, "query cop {__typename}")


async def get_based_mutations(target: Target) -> bool:
    return await _get_query(target, "mutation cop {__typename}")


async def post_url_encoded_csrf(target: Target) -> bool:
    # graphql-cop's request(verb='POST', params=...): the query in the URL, no JSON body.
    response = await target.client.post(
        "/graphql", params={"query": "query cop {__typename}"}, headers=target.headers
    )
    form = await target.client.post(
        "/graphql",
        content="query=query+cop+%7B__typename%7D",
        headers={**target.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    for answer in (response, form):
        try:
            if _get(answer.json(), "data", "__typename"):
                return True
        except ValueError:
            pass
    return False


async def trace_mode(target: Target) -> bool:
    answer = await target.query("query cop { __typename }")
    extensions = _get(answer, "errors", "extensions") or _get(answer, "extensions") or {}
    if isinstance(extensions, dict) and (extensions.get("tracing") or extensions.get("exception")):
        return True
    return "stacktrace" in str(answer).lower()


async def unhandled_errors(target: Target) -> bool:
    answer = await target.query("qwerty cop { abc }")
    if _get(answer, "errors", 0, "extensions", "exception"):
        return True
    return "'extensions': {'exception':" in str(answer).lower()


PROBES: dict[str, Callable[[Target], Any]] = {
    "alias overloading": alias_overloading,
    "batch queries": batch_queries,
    "directive overloading": directive_overloading,
    "field duplication": field_duplication,
    "circular introspection": circular_introspection,
    "circular fragment": circular_fragment,
    "field suggestions": field_suggestions,
    "introspection": introspection,
    "GraphiQL": graphiql,
    "GET queries": get_method_queries,
    "GET mutations": get_based_mutations,
    "POST url-encoded (CSRF)": post_url_encoded_csrf,
    "trace mode": trace_mode,
    "unhandled errors": unhandled_errors,
}


async def test_the_target_is_recognised_as_graphql(production: Target) -> None:
    # graphql-cop's is_graphql: without it the audit stops before any probe, finding nothing.
    answer = await production.query("query cop { __typename }")
    errors = answer.get("errors") or []
    assert _get(answer, "data", "__typename") == "Query" or any(
        "extensions" in error for error in errors
    )


async def test_graphql_cop_finds_nothing_in_production(production: Target) -> None:
    findings = [name for name, probe in PROBES.items() if await probe(production)]
    assert findings == []


async def test_the_probes_find_what_a_development_server_allows(database_url: str) -> None:
    # The same probes against a development server, which has introspection, suggestions and
    # GraphiQL on: they do report those, so a probe that can never fire would show up here.
    app = create_app(make_settings(database_url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        project = await create_project(app, Api(app, ROOT_TOKEN), uuid.uuid4().hex)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            target = Target(client, {"Accept": "*/*", "Authorization": f"Bearer {project.api_key}"})
            found = {name for name, probe in PROBES.items() if await probe(target)}
    assert found == {"introspection", "field suggestions", "GraphiQL"}


@pytest.mark.parametrize("production", ["project-key"], indirect=True)
@pytest.mark.parametrize(
    "document",
    [
        "{ __typename @skip(if: false) @skip(if: false) }",
        "query @aa @aa { __typename }",
        "{ ...F } fragment F on Query @aa @aa { __typename }",
        "{ ... @bb @aa @bb { __typename } }",
    ],
)
async def test_a_directive_repeated_in_one_place_is_one_error(
    production: Target, document: str
) -> None:
    answer = await production.query(document)
    assert answer["errors"] == [
        {
            "message": _get(answer, "errors", 0, "message"),
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
        }
    ]
    assert "can only be used once at this location" in answer["errors"][0]["message"]
