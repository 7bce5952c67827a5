"""Helpers for tests: a gql client on the app in-process, and project factories."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gql import Client, gql
from starlette.types import ASGIApp

SCHEMA_SDL = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
ROOT_TOKEN = "test-root-token-0123456789"


def raw_uuid(node_id: str) -> uuid.UUID:
    """The row id inside a global id (base64 of "Type:raw"), to find the row in the database."""
    return uuid.UUID(base64.b64decode(node_id).decode().split(":", 1)[1])


@dataclass
class GraphQLResponse:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]]

    def error_codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


class Api:
    """Runs documents against the app in-process.

    Every document is first validated by gql against the committed schema.graphql, so a
    test cannot pass by asking for something the published schema does not have.
    """

    _validator = Client(schema=SCHEMA_SDL)

    def __init__(self, app: ASGIApp | str, token: str | None) -> None:
        """`app` in-process, or the base URL of a running server."""
        self._app = app
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(self, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        if isinstance(self._app, str):
            client = httpx.AsyncClient(base_url=self._app, timeout=30)
        else:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self._app), base_url="http://testserver"
            )
        async with client:
            return await client.post("/graphql", json=payload, headers=headers or self.headers())

    async def run(self, document: str, **variables: Any) -> GraphQLResponse:
        """Data and errors as the server sent them (errors are not raised)."""
        self._validator.validate(gql(document))
        response = await self.post({"query": document, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        return GraphQLResponse(data=body.get("data"), errors=body.get("errors") or [])

    async def ok(self, document: str, **variables: Any) -> dict[str, Any]:
        """Data of a response that must carry no errors."""
        response = await self.run(document, **variables)
        assert response.errors == [], response.errors
        assert response.data is not None
        return response.data


@dataclass
class ProjectHandle:
    id: str
    name: str
    api_key: str
    api: Api


CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) {
    __typename
    ... on CreateProjectPayload { project { id name } }
  }
}
"""
CREATE_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId, name: "tests"}) {
    __typename
    ... on CreateApiKeyPayload { secret apiKey { id } }
  }
}
"""


async def create_project(app: ASGIApp | str, root: Api, name: str) -> ProjectHandle:
    created = await root.ok(CREATE_PROJECT, name=name)
    project = created["createProject"]["project"]
    issued = await root.ok(CREATE_KEY, projectId=project["id"])
    secret = issued["createApiKey"]["secret"]
    return ProjectHandle(id=project["id"], name=name, api_key=secret, api=Api(app, secret))
