from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.core.validation import check_storable, invalid_input_from
from powermemo_gql.errors import Conflict, InvalidInput, NotFound
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.projects.auth import generate_api_key
from powermemo_gql.projects.models import ApiKey, Project
from powermemo_gql.projects.repository import ApiKeyRepository, ProjectRepository

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    secret: str  # returned once, at creation; only its hash is kept


def _checked_name(value: str, field: str) -> str:
    name = value.strip()
    if not name:
        raise InvalidInput(field, "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(field, f"must be at most {MAX_NAME_LENGTH} characters")
    check_storable(name, field)
    return name


class ProjectService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.projects = ProjectRepository(session)
        self.keys = ApiKeyRepository(session)

    async def create_project(self, name: str, *, now: datetime) -> Project:
        """A project created at `now` (the caller's clock)."""
        name = _checked_name(name, "name")
        if await self.projects.get_by_name(name) is not None:
            raise Conflict("Project", name)
        try:
            return await self.projects.add(Project(name=name, created_at=now))
        except IntegrityError as exc:  # created concurrently
            raise Conflict("Project", name) from exc

    async def get_project(self, project_id: str) -> Project:
        parsed = parse_uuid(project_id)
        project = await self.projects.get(parsed) if parsed else None
        if project is None:
            raise NotFound("Project", project_id)
        return project

    async def find_project(self, id_or_name: str) -> Project:
        """By id, or by name (for operators at the command line)."""
        parsed = parse_uuid(id_or_name)
        project = await self.projects.get(parsed) if parsed else None
        if project is None:
            project = await self.projects.get_by_name(id_or_name)
        if project is None:
            raise NotFound("Project", id_or_name)
        return project

    async def list_projects(self, args: PageArgs) -> Page[Project]:
        return await self.projects.list(args)

    async def list_api_keys(self, project_id: uuid.UUID) -> list[ApiKey]:
        return await self.keys.list_for_project(project_id)

    async def api_keys_of_projects(
        self, project_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ApiKey]]:
        return await self.keys.list_for_projects(project_ids)

    async def create_api_key(self, project_id: str, name: str, *, now: datetime) -> IssuedApiKey:
        """A key of the project, created at `now` (the caller's clock)."""
        project = await self.get_project(project_id)
        secret, prefix, key_hash = generate_api_key()
        key = ApiKey(
            project_id=project.id,
            name=_checked_name(name, "name"),
            prefix=prefix,
            key_hash=key_hash,
            created_at=now,
        )
        return IssuedApiKey(key=await self.keys.add(key), secret=secret)

    async def profile_config(self, project_id: uuid.UUID) -> ProfileConfig:
        project = await self.get_project(str(project_id))
        return ProfileConfig.from_stored(project.profile_config)

    async def set_profile_config(self, project_id: uuid.UUID, raw: dict[str, Any]) -> ProfileConfig:
        """Replace the project's profile config; what `raw` leaves out takes its default."""
        try:
            config = ProfileConfig.model_validate(raw)
        except ValidationError as exc:
            raise invalid_input_from(exc, "input") from exc
        project = await self.get_project(str(project_id))
        project.profile_config = config.model_dump(mode="json", exclude_defaults=True)
        await self.session.flush()
        return config

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> ApiKey:
        """Revoked at `now` (the caller's clock), unless it already was."""
        parsed = parse_uuid(key_id)
        key = await self.keys.get(parsed) if parsed else None
        if key is None:
            raise NotFound("ApiKey", key_id)
        if key.revoked_at is None:
            key.revoked_at = now
            await self.session.flush()
        return key

    async def revoked_among(self, key_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `key_ids` that no longer authenticate (revoked, or their project gone)."""
        return key_ids - await self.keys.active_ids(key_ids)
