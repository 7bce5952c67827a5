"""What every operation sets up and checks around itself, in one schema extension (each
extension strawberry enters costs per operation, so they are few): fresh DataLoaders, the
request unit's mode (core/request_unit.py), and errors from unstorable text (storable.py)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, FieldNode, Node
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from powermemo_gql.core.request_unit import Mode
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.storable import storable_errors

# The fields whose value is only right if everything else the operation reads is read in
# the same snapshot.
_SNAPSHOT_FIELDS = frozenset({"changesCursor"})


def _selects(node: Node, names: frozenset[str]) -> bool:
    """Whether a field of one of these names is selected anywhere (fragments included)."""
    if isinstance(node, FieldNode) and node.name.value in names:
        return True
    selection_set = getattr(node, "selection_set", None)
    if selection_set is None:
        return False
    return any(_selects(child, names) for child in selection_set.selections)


def mode_of(document: DocumentNode, operation: OperationType) -> Mode:
    if operation is not OperationType.QUERY:
        return Mode.WRITE
    if any(_selects(definition, _SNAPSHOT_FIELDS) for definition in document.definitions):
        return Mode.SNAPSHOT
    return Mode.READ


class OperationScope(SchemaExtension):
    """The unit's mode is set once the operation is parsed; the view ends the operation
    (graphql/view.py), since ending it awaits the database and this hook runs in
    synchronous executions too (introspection)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            # Over websockets one context serves a whole connection: fresh loaders each time.
            context.start_operation()
        yield

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        unit = context.unit if isinstance(context, Context) else None
        document = execution.graphql_document
        if unit is not None and document is not None:  # None: a websocket, own units
            unit.begin_operation(mode_of(document, execution.operation_type))
        yield
        result = execution.result
        if result is not None and result.errors:
            result.errors = storable_errors(result.errors, document, execution.variables or {})
