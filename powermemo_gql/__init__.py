"""Powermemo GQL: a user-memory server for LLM applications, spoken to over GraphQL."""

__version__ = "0.1.0"
