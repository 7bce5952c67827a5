"""Text the database cannot store (NUL, lone surrogates) never ends as an internal error.

Services refuse such text where they know the field, as a typed InvalidInput, on SQLite and
PostgreSQL alike. Anything that still trips over it in the database (a field without its own
check) is reported as BAD_USER_INPUT naming where the text came from, not masked.
"""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, visit
from graphql.language import Visitor

from powermemo_gql.core.validation import find_unstorable_text, text_problem
from powermemo_gql.graphql.errors import is_unexpected


class _Literals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: tuple[str, str] | None = None

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        problem = text_problem(node.value)
        if problem is not None and self.found is None:
            line = node.loc.source.get_location(node.loc.start).line if node.loc else "?"
            self.found = (f"the string on line {line}", problem)


def _unstorable_in(
    document: DocumentNode | None, variables: dict[str, Any]
) -> tuple[str, str] | None:
    for name, value in variables.items():
        found = find_unstorable_text(value, f"${name}")
        if found is not None:
            return found
    if document is None:
        return None
    literals = _Literals()
    visit(document, literals)
    return literals.found


def storable_errors(
    errors: list[GraphQLError], document: DocumentNode | None, variables: dict[str, Any]
) -> list[GraphQLError]:
    """The errors of an execution, with unexpected ones that unstorable text of the request
    caused reported as BAD_USER_INPUT naming where the text came from."""
    if not any(map(is_unexpected, errors)):
        return errors
    found = _unstorable_in(document, variables)
    if found is None:
        return errors
    field, problem = found
    return [
        GraphQLError(
            f"{field} {problem}.",
            path=error.path,
            extensions={"code": "BAD_USER_INPUT", "field": field},
        )
        if is_unexpected(error)
        else error
        for error in errors
    ]
