"""Text the database cannot store (NUL, lone surrogates) is refused before anything runs.

Every string of a request passes here, whatever field it is for: a string literal in the
document by a validation rule, a variable by an extension. Both answer BAD_USER_INPUT.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult, GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from powermemo_gql.core.validation import text_problem


class StorableStringLiterals(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        problem = text_problem(node.value)
        if problem is not None:
            self.report_error(
                GraphQLError(f"A string {problem}.", node, extensions={"code": "BAD_USER_INPUT"})
            )


def _first_unstorable(value: Any, path: str) -> tuple[str, str] | None:
    """(path, problem) of the first string in a JSON value that cannot be stored. A loop, not
    recursion: a variable may nest as deep as the JSON parser allowed."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return where, problem
        elif isinstance(item, dict):
            children = [
                pair
                for key, child in item.items()
                for pair in ((str(key), f"{where} (a key)"), (child, f"{where}.{key}"))
            ]
            pending.extend(reversed(children))
        elif isinstance(item, list):
            pending.extend(reversed([(c, f"{where}[{i}]") for i, c in enumerate(item)]))
    return None


class StorableVariables(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        for name, value in (self.execution_context.variables or {}).items():
            found = _first_unstorable(value, f"${name}")
            if found is not None:
                field, problem = found
                # A result set here means strawberry does not execute the operation.
                self.execution_context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"{field} {problem}.",
                            extensions={"code": "BAD_USER_INPUT", "field": field},
                        )
                    ],
                )
                break
        yield
