"""Domain errors: the expected failures a service can report.

The GraphQL layer maps each to a typed union member carrying a code; anything
that is not a DomainError is unexpected and gets masked.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "NOT_FOUND"

    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} '{id}' not found")
        self.entity = entity
        self.id = id


class Conflict(DomainError):
    code = "ALREADY_EXISTS"

    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} '{id}' already exists")
        self.entity = entity
        self.id = id


class Forbidden(DomainError):
    code = "FORBIDDEN"


class InvalidInput(DomainError):
    """Input that parsed as GraphQL but breaks a rule; `field` is a dotted path."""

    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class LLMUnavailable(DomainError):
    """The LLM could not give a usable answer, even after the configured retries."""

    code = "LLM_UNAVAILABLE"


class EmbeddingUnavailable(DomainError):
    """The embedding provider gave no vectors, even after the configured retries."""

    code = "EMBEDDING_UNAVAILABLE"
