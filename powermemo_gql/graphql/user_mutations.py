"""The user mutations: create, update, delete."""

from __future__ import annotations

from typing import Annotated

import strawberry

from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.errors import (
    InvalidInput,
    NotFound,
    UserAlreadyExists,
    domain_errors_as_results,
)
from powermemo_gql.graphql.user_arguments import CreateUserInput, DeleteUserInput, UpdateUserInput
from powermemo_gql.graphql.users import User
from powermemo_gql.users.service import UserService


@strawberry.type(description="A user was created.")
class CreateUserPayload:
    user: User = strawberry.field(description="The new user.")


@strawberry.type(description="A user's data was replaced.")
class UpdateUserPayload:
    user: User = strawberry.field(description="The user, with the new data.")


@strawberry.type(description="A user and all of their memory were deleted.")
class DeleteUserPayload:
    deleted_user_id: strawberry.ID = strawberry.field(description="The deleted user's id.")


CreateUserResult = Annotated[
    CreateUserPayload | UserAlreadyExists | InvalidInput,
    strawberry.union("CreateUserResult", description="The user created, or why not."),
]
UpdateUserResult = Annotated[
    UpdateUserPayload | NotFound | InvalidInput,
    strawberry.union("UpdateUserResult", description="The user updated, or why not."),
]
DeleteUserResult = Annotated[
    DeleteUserPayload | NotFound,
    strawberry.union("DeleteUserResult", description="The user deleted, or why not."),
]


@strawberry.type
class UserMutation:
    @strawberry.mutation(
        description="Create a user, with the app's own id for it or a generated one."
    )
    @domain_errors_as_results()
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The new user.")],
    ) -> CreateUserResult:
        ctx = info.context
        async with ctx.uow() as session:
            row = await UserService(session).create(
                ctx.project_id, input.user_id, input.data, now=ctx.resources.clock.now()
            )
        return CreateUserPayload(user=User(row=row))

    @strawberry.mutation(description="Replace a user's data.")
    @domain_errors_as_results()
    async def update_user(
        self,
        info: Info,
        input: Annotated[
            UpdateUserInput, strawberry.argument(description="The user and their new data.")
        ],
    ) -> UpdateUserResult:
        ctx = info.context
        async with ctx.uow() as session:
            row = await UserService(session).update(
                ctx.project_id, input.user_id, input.data, now=ctx.resources.clock.now()
            )
        return UpdateUserPayload(user=User(row=row))

    @strawberry.mutation(
        description="Delete a user and everything of theirs: blobs, buffer, profile, events."
    )
    @domain_errors_as_results()
    async def delete_user(
        self,
        info: Info,
        input: Annotated[DeleteUserInput, strawberry.argument(description="The user to delete.")],
    ) -> DeleteUserResult:
        ctx = info.context
        async with ctx.uow() as session:
            row = await UserService(session).delete(ctx.project_id, input.user_id)
        return DeleteUserPayload(deleted_user_id=strawberry.ID(row.external_id))
