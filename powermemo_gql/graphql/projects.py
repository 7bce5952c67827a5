"""Projects and API keys over GraphQL: managed by the root token only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from powermemo_gql import errors as domain
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.errors import (
    InvalidInput,
    NotFound,
    ProjectAlreadyExists,
    domain_errors_as_results,
)
from powermemo_gql.graphql.node import Node, decoded_id, global_id, raw_id
from powermemo_gql.graphql.pagination import (
    After,
    Before,
    Connection,
    First,
    Last,
    page_args,
    query_input_errors,
    to_connection,
)
from powermemo_gql.projects.models import ApiKey as ApiKeyRow
from powermemo_gql.projects.models import Project as ProjectRow
from powermemo_gql.projects.service import MAX_NAME_LENGTH, ProjectService
from powermemo_gql.usecases import UseCases


@strawberry.type(description="A credential of a project. The secret itself is shown only once.")
class ApiKey(Node):
    row: strawberry.Private[ApiKeyRow]

    @strawberry.field(description="The key's global id.")
    def id(self) -> strawberry.ID:
        return global_id("ApiKey", self.row.id)

    @strawberry.field(description="Its label, e.g. default.")
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="The first characters of the key, to tell keys apart.")
    def prefix(self) -> str:
        return self.row.prefix

    @strawberry.field(description="When it was issued.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="When it was revoked; null while it works.")
    def revoked_at(self) -> datetime | None:
        return self.row.revoked_at


@strawberry.type(
    description="A tenant: its users and their memory are invisible to other projects."
)
class Project(Node):
    row: strawberry.Private[ProjectRow]

    @strawberry.field(description="The project's global id (root only).")
    def id(self) -> strawberry.ID:
        return global_id("Project", self.row.id)

    @strawberry.field(description="Its name, unique among projects.")
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="When it was created.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="Root only.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        info.context.require_root()
        rows = await info.context.loaders.api_keys.load(self.row.id)
        return [ApiKey(row=row) for row in rows]


@strawberry.type(description="Who is calling.")
class Viewer:
    is_root: bool = strawberry.field(
        description="Whether the caller is the root token, which manages projects and API keys."
    )
    project: Project | None = strawberry.field(
        description="The project of the caller's API key; null for the root token."
    )


@strawberry.input(description="A new project.")
class CreateProjectInput:
    name: str = strawberry.field(
        description=f"1 to {MAX_NAME_LENGTH} characters (trimmed), unique among projects."
    )


@strawberry.input(description="A new API key of a project.")
class CreateApiKeyInput:
    project_id: strawberry.ID = strawberry.field(description="The project whose data it opens.")
    name: str = strawberry.field(
        default="default", description=f"A label: 1 to {MAX_NAME_LENGTH} characters (trimmed)."
    )


@strawberry.type(description="A project was created.")
class CreateProjectPayload:
    project: Project = strawberry.field(description="The new project.")


@strawberry.type(description="An API key was issued.")
class CreateApiKeyPayload:
    api_key: ApiKey = strawberry.field(description="The new key.")
    secret: str = strawberry.field(
        description="The key to send as `Authorization: Bearer <secret>`. Shown only now."
    )


@strawberry.input(description="The API key to revoke.")
class RevokeApiKeyInput:
    id: strawberry.ID = strawberry.field(description="The key's id.")


@strawberry.type(description="An API key was revoked (or already was).")
class RevokeApiKeyPayload:
    api_key: ApiKey = strawberry.field(description="The key, with revokedAt set.")


CreateProjectResult = Annotated[
    CreateProjectPayload | ProjectAlreadyExists | InvalidInput,
    strawberry.union("CreateProjectResult", description="The project created, or why not."),
]
CreateApiKeyResult = Annotated[
    CreateApiKeyPayload | NotFound | InvalidInput,
    strawberry.union("CreateApiKeyResult", description="The key issued, or why not."),
]
RevokeApiKeyResult = Annotated[
    RevokeApiKeyPayload | NotFound,
    strawberry.union("RevokeApiKeyResult", description="The key revoked, or why not."),
]


@strawberry.type
class ProjectQuery:
    @strawberry.field(description="Who is calling: the root token, or a project's API key.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        if principal.project_id is None:
            return Viewer(is_root=principal.is_root, project=None)
        async with info.context.uow() as session:
            row = await ProjectService(session).get_project(str(principal.project_id))
        return Viewer(is_root=principal.is_root, project=Project(row=row))

    @strawberry.field(description="Root only.")
    async def projects(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Project]:
        info.context.require_root()
        with query_input_errors():
            async with info.context.uow() as session:
                page = await ProjectService(session).list_projects(
                    page_args(first, after, last, before)
                )
        return to_connection(page, lambda row: Project(row=row))

    @strawberry.field(description="Root only. A project, or null.")
    async def project(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The project's global id.")],
    ) -> Project | None:
        info.context.require_root()
        try:
            with query_input_errors():
                raw = raw_id(id, "Project", "id")
            async with info.context.uow() as session:
                row = await ProjectService(session).get_project(raw)
        except domain.NotFound:
            return None
        return Project(row=row)


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(description="Root only.")
    @domain_errors_as_results()
    async def create_project(
        self,
        info: Info,
        input: Annotated[CreateProjectInput, strawberry.argument(description="The new project.")],
    ) -> CreateProjectResult:
        info.context.require_root()
        async with info.context.uow() as session:
            now = info.context.resources.clock.now()
            row = await ProjectService(session).create_project(input.name, now=now)
        return CreateProjectPayload(project=Project(row=row))

    @strawberry.mutation(description="Root only. The secret is in the payload, and nowhere else.")
    @domain_errors_as_results()
    async def create_api_key(
        self,
        info: Info,
        input: Annotated[
            CreateApiKeyInput, strawberry.argument(description="The project and the key's label.")
        ],
    ) -> CreateApiKeyResult:
        info.context.require_root()
        with decoded_id(input.project_id, "Project", "input.projectId") as raw:
            async with info.context.uow() as session:
                now = info.context.resources.clock.now()
                issued = await ProjectService(session).create_api_key(raw, input.name, now=now)
        return CreateApiKeyPayload(api_key=ApiKey(row=issued.key), secret=issued.secret)

    @strawberry.mutation(description="Root only. The key stops working at once.")
    @domain_errors_as_results(invalid_input="top_level")
    async def revoke_api_key(
        self,
        info: Info,
        input: Annotated[RevokeApiKeyInput, strawberry.argument(description="The key to revoke.")],
    ) -> RevokeApiKeyResult:
        ctx = info.context
        ctx.require_root()
        with decoded_id(input.id, "ApiKey", "input.id") as raw:
            async with ctx.uow() as session:
                row = await UseCases(session, ctx.resources).revoke_api_key(raw)
        return RevokeApiKeyPayload(api_key=ApiKey(row=row))
