"""What a document may cost before the standard validation rules see it.

Every measure here walks each fragment once and combines the results per fragment, so a
fragment spread twice in each of twenty fragments costs twenty steps, not 2**20 (the stock
depth and alias limiters re-expand every spread, which took 13 s for a 911-byte document).
The expanded sizes this computes then bound the rules that do expand fragments: graphql-core's
OverlappingFieldsCanBeMerged compares every pair of fields that share a response name, so a
document whose merged fields repeat a lot is refused here, before it runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# A field compared with n others that share its response name costs OverlappingFields ~n
# steps; the sum of n**2 over merged fields may be this many times the fields allowed.
OVERLAP_PER_FIELD = 5
# Fragments spread inside fragments inside ...: graphql-core recurses once per level and gives
# up ("Validation aborted.") past the interpreter's recursion limit, so refuse it plainly.
MAX_FRAGMENT_NESTING = 100
# Over HTTP one operation runs; graphql-core's rules walk each operation again (variables).
MAX_OPERATIONS = 50
MAX_REPORTED = 10  # errors of one kind named in a refusal (each one is logged, too)


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int
    max_aliases: int
    max_directives: int
    max_fields: int  # selections once fragments are expanded

    @property
    def max_overlap(self) -> int:
        return self.max_fields * OVERLAP_PER_FIELD


def refusal(message: str, limit: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX, "limit": limit})


@dataclass
class _Shape:
    """One selection set's own measures, its spreads kept apart until they are resolved."""

    depth: int = 0
    aliases: int = 0
    selections: int = 0
    directives: int = 0
    repeated: str | None = None  # the first directive named twice on one selection
    # (fragment, depth there; None below an introspection field, where depth is not counted)
    spreads: list[tuple[str, int | None]] = field(default_factory=list)


def _repeated(directives: Collection[DirectiveNode] | None) -> str | None:
    seen: set[str] = set()
    for directive in directives or ():  # one pass: a selection may carry a thousand
        if directive.name.value in seen:
            return directive.name.value
        seen.add(directive.name.value)
    return None


def _shape(selection_set: SelectionSetNode) -> _Shape:
    """Walk one definition's own AST (never into other fragments); no recursion, so the
    parser's nesting limit is the only bound on how deep this goes.

    Below an introspection field (`__schema`, `__type`) nothing counts towards depth, as in the
    stock limiter, but the walk goes on: its fields, aliases and fragment spreads count like
    any others (GraphiQL's introspection query spreads FullType there)."""
    shape = _Shape()
    # (selection set, depth, or None below an introspection field)
    stack: list[tuple[SelectionSetNode, int | None]] = [(selection_set, 0)]
    while stack:
        current, depth = stack.pop()
        for selection in current.selections:
            shape.selections += 1
            shape.directives += len(selection.directives or ())
            shape.repeated = shape.repeated or _repeated(selection.directives)
            if depth is not None:
                shape.depth = max(shape.depth, depth)
            if isinstance(selection, FieldNode):
                shape.aliases += selection.alias is not None
                if selection.selection_set:
                    below = None
                    if depth is not None and not selection.name.value.startswith("__"):
                        below = depth + 1
                    stack.append((selection.selection_set, below))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, depth))
            elif isinstance(selection, FragmentSpreadNode):
                shape.spreads.append((selection.name.value, depth))
    return shape


@dataclass(frozen=True)
class _Expanded:
    depth: int
    aliases: int
    selections: int
    nesting: int  # fragments within fragments below this one


class DocumentMeasure:
    """Depth, aliases and expanded selections of each operation, fragments memoised."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        self._shapes = {name: _shape(f.selection_set) for name, f in self.fragments.items()}
        self._operation_shapes = [_shape(o.selection_set) for o in self.operations]
        self._expanded: dict[str, _Expanded] = {}
        self.cycle: list[str] | None = None
        self._resolve_fragments()

    def _resolve_fragments(self) -> None:
        """Post-order over the spread graph with an explicit stack; a spread back into the
        path is a cycle (reported once, counted as empty so the walk ends)."""
        on_path: set[str] = set()
        for root in self._shapes:
            if root in self._expanded:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            on_path.add(root)
            while stack:
                name, next_spread = stack[-1]
                spreads = self._shapes[name].spreads
                if next_spread < len(spreads):
                    stack[-1] = (name, next_spread + 1)
                    target = spreads[next_spread][0]
                    if target in on_path:
                        if self.cycle is None:
                            self.cycle = [n for n, _ in stack] + [target]
                    elif target in self._shapes and target not in self._expanded:
                        on_path.add(target)
                        stack.append((target, 0))
                    continue
                stack.pop()
                on_path.discard(name)
                self._expanded[name] = self._combine(self._shapes[name])

    def _combine(self, shape: _Shape) -> _Expanded:
        depth, aliases, selections = shape.depth, shape.aliases, shape.selections
        nesting = 0
        for target, at in shape.spreads:
            inner = self._expanded.get(target)
            if inner is None:  # unknown (KnownFragmentNames reports it) or in a cycle
                continue
            if at is not None:
                depth = max(depth, at + inner.depth)
            aliases += inner.aliases
            selections += inner.selections
            nesting = max(nesting, 1 + inner.nesting)
        return _Expanded(depth, aliases, selections, nesting)

    def unused_fragments(self) -> list[str]:
        reached: set[str] = set()
        stack = [name for shape in self._operation_shapes for name, _ in shape.spreads]
        while stack:
            name = stack.pop()
            if name in reached or name not in self._shapes:
                continue
            reached.add(name)
            stack.extend(target for target, _ in self._shapes[name].spreads)
        return [name for name in self.fragments if name not in reached]

    def expanded_operations(self) -> list[tuple[OperationDefinitionNode, _Expanded]]:
        return [
            (o, self._combine(s))
            for o, s in zip(self.operations, self._operation_shapes, strict=True)
        ]

    def directives(self) -> int:
        own = sum(len(o.directives or ()) for o in self.operations)
        own += sum(len(f.directives or ()) for f in self.fragments.values())
        shapes = (*self._shapes.values(), *self._operation_shapes)
        return own + sum(s.directives for s in shapes)

    def repeated_directive(self) -> str | None:
        """A directive named twice in one place. None of ours is repeatable, so such a document
        is invalid anyway; refused here with one error, not one per unknown directive."""
        definitions = (*self.operations, *self.fragments.values())
        shapes = (*self._shapes.values(), *self._operation_shapes)
        return next(
            (
                name
                for name in (
                    *(_repeated(d.directives) for d in definitions),
                    *(s.repeated for s in shapes),
                )
                if name
            ),
            None,
        )


def overlap(measure: DocumentMeasure, operation: OperationDefinitionNode) -> int:
    """Sum over response paths (fields merged as execution merges them) of how many fields
    share each path, squared: what OverlappingFieldsCanBeMerged compares. Only called once
    the expanded selections are known to be within the limit, which bounds this walk."""
    paths: Counter[tuple[int, str]] = Counter()
    ids: dict[tuple[int, str], int] = {}
    total = 0
    stack: list[tuple[SelectionSetNode, int]] = [(operation.selection_set, 0)]
    while stack:
        current, parent = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                key = (parent, (selection.alias or selection.name).value)
                seen = paths[key]
                paths[key] = seen + 1
                total += 2 * seen + 1  # (n + 1)**2 - n**2
                if selection.selection_set:
                    stack.append((selection.selection_set, ids.setdefault(key, len(ids) + 1)))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, parent))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = measure.fragments.get(selection.name.value)
                if fragment is not None:
                    stack.append((fragment.selection_set, parent))
    return total


def document_errors(document: DocumentNode, limits: QueryLimits) -> list[GraphQLError]:
    """The limits a document breaks, cheapest measures first; [] when it is within them."""
    measure = DocumentMeasure(document)
    if measure.cycle is not None:
        path = " -> ".join(measure.cycle)
        return [refusal(f"fragments spread each other in a cycle: {path}", "fragment_cycle")]
    if len(measure.operations) > MAX_OPERATIONS:
        return [
            refusal(
                f"the document holds {len(measure.operations)} operations; "
                f"at most {MAX_OPERATIONS} are allowed",
                "operations",
            )
        ]
    unused = measure.unused_fragments()
    if unused:  # as NoUnusedFragments would, but before a walk of each of them
        return [
            GraphQLError(
                f"Fragment '{name}' is never used.",
                extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
            )
            for name in unused[:MAX_REPORTED]
        ]
    repeated = measure.repeated_directive()
    if repeated is not None:  # graphql-cop's directive overloading: `@aa` ten times
        return [
            GraphQLError(
                f"The directive '@{repeated}' can only be used once at this location.",
                extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
            )
        ]
    directives = measure.directives()
    if directives > limits.max_directives:
        return [
            refusal(
                f"the document exceeds the {limits.max_directives} directives allowed "
                f"(it has {directives})",
                "max_query_directives",
            )
        ]
    errors: list[GraphQLError] = []
    for operation, expanded in measure.expanded_operations():
        name = operation.name.value if operation.name else "anonymous"
        if expanded.nesting > MAX_FRAGMENT_NESTING:
            errors.append(
                refusal(
                    f"'{name}' nests fragments {expanded.nesting} deep; "
                    f"at most {MAX_FRAGMENT_NESTING} are allowed",
                    "fragment_nesting",
                )
            )
            continue
        if expanded.depth > limits.max_depth:
            errors.append(
                refusal(
                    f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                    "max_query_depth",
                )
            )
        if expanded.aliases > limits.max_aliases:
            errors.append(
                refusal(
                    f"{expanded.aliases} aliases found. Allowed: {limits.max_aliases}",
                    "max_query_aliases",
                )
            )
        if expanded.selections > limits.max_fields:
            errors.append(
                refusal(
                    f"'{name}' selects {expanded.selections} fields once its fragments are "
                    f"expanded; at most {limits.max_fields} are allowed",
                    "max_query_fields",
                )
            )
        elif overlap(measure, operation) > limits.max_overlap:
            errors.append(
                refusal(
                    f"'{name}' repeats the same fields too often to be checked",
                    "max_query_fields",
                )
            )
    return errors
