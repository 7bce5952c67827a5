"""Who is calling: the operator (root token) or a project (API key)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.projects.repository import ApiKeyRepository

API_KEY_PREFIX = "pm_"
_PREFIX_SHOWN = 10  # characters of a key kept in clear to tell keys apart


@dataclass(frozen=True)
class Principal:
    is_root: bool
    project_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None

    @classmethod
    def root(cls) -> Principal:
        return cls(is_root=True)


def generate_api_key() -> tuple[str, str, str]:
    """A new secret with its display prefix and hash. The secret is shown once, never stored."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:_PREFIX_SHOWN], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is safe here; a slow KDF would only
    # add latency to every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(
    session: AsyncSession, token: str, root_token: str | None
) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nobody."""
    if root_token is not None and hmac.compare_digest(token.encode(), root_token.encode()):
        return Principal.root()
    if not token.startswith(API_KEY_PREFIX):
        return None
    key = await ApiKeyRepository(session).active_by_hash(hash_api_key(token))
    if key is None:
        return None
    return Principal(is_root=False, project_id=key.project_id, api_key_id=key.id)
