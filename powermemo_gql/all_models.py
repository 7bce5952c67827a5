"""Every table model, imported in one place so metadata (and alembic) sees them all."""

from powermemo_gql.blobs.models import Blob
from powermemo_gql.buffers.models import BufferItem, Flush, FlushLock, FlushStepUsage
from powermemo_gql.changes.models import Change
from powermemo_gql.events.models import Event
from powermemo_gql.profiles.models import ProfileEntry, ProfileRevision
from powermemo_gql.projects.models import ApiKey, Project
from powermemo_gql.recall.models import (
    EmbeddingUsage,
    EventFact,
    MemoryVector,
    MemoryVectorVersion,
)
from powermemo_gql.users.models import User

__all__ = [
    "ApiKey",
    "Blob",
    "BufferItem",
    "Change",
    "EmbeddingUsage",
    "Event",
    "EventFact",
    "Flush",
    "FlushLock",
    "FlushStepUsage",
    "MemoryVector",
    "MemoryVectorVersion",
    "ProfileEntry",
    "ProfileRevision",
    "Project",
    "User",
]
