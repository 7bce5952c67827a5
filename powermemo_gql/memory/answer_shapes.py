"""JSON values from an LLM answer bent towards the shape of an answer model.

Generic over the models in parsing.py: it reads their fields (a wrapper with one list of
items, or plain fields) rather than knowing each answer. What it does not fix is left for
pydantic to refuse, item by item.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from powermemo_gql.memory.json_repair import CutObject, json_values

# Other names models use for a field: the first that the model has (and lacks) is taken.
_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "subtopic": ("sub_topic",),
    "subtopics": ("sub_topic", "entries"),
    "sub_category": ("sub_topic",),
    "subcategory": ("sub_topic",),
    "slot": ("sub_topic",),
    "category": ("topic",),
    "topic_name": ("topic",),
    "value": ("content",),
    "text": ("content", "value", "summary"),
    "memo": ("content", "value"),
    "content": ("value", "summary"),
    "fact": ("content", "facts"),
    "observation": ("content",),
    "description": ("content",),
    "new_content": ("content",),
    "updated_content": ("content",),
    "merged_content": ("content",),
    "shortened": ("content", "entries"),
    "idx": ("index",),
    "id": ("index",),
    "item_index": ("index",),
    "decision": ("action", "decisions"),
    "op": ("action",),
    "operation": ("action",),
    "name": ("tag",),
    "key": ("tag",),
    "tag_name": ("tag",),
    "tag_value": ("value",),
    "event_tags": ("tags",),
    "entry": ("entries",),
    "regrouped": ("entries",),
    "summary_text": ("summary",),
    "notes": ("summary",),
    "memories": ("facts",),
    "profile": ("facts",),
    "items": ("facts", "decisions", "tags", "entries"),
    "results": ("facts", "decisions", "tags", "entries", "summary"),
    "result": ("facts", "decisions", "tags", "entries", "summary"),
    "data": ("facts", "decisions", "tags", "entries"),
    "output": ("facts", "decisions", "tags", "entries", "summary"),
}

# Words models use for the actions of a merge decision (and any other closed set of words).
_WORD_ALIASES: dict[str, tuple[str, ...]] = {
    "new": ("add",),
    "create": ("add",),
    "insert": ("add",),
    "append": ("add",),
    "modify": ("update",),
    "replace": ("update",),
    "change": ("update",),
    "edit": ("update",),
    "merge": ("update",),
    "skip": ("abort",),
    "ignore": ("abort",),
    "keep": ("abort",),
    "none": ("abort",),
    "noop": ("abort",),
    "no_change": ("abort",),
    "unchanged": ("abort",),
    "discard": ("abort",),
    "cancel": ("abort",),
}

_JOINERS = {"summary": "\n"}  # how a list given for a text field is joined; else "; "
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def shaped_answer(model: type[BaseModel], values: list[Any]) -> Iterator[dict[str, Any]]:
    """Readings of `values` as `model`'s input, most likely first."""
    listed = list_field(model)
    if listed is None:
        for value in reversed(values):
            if isinstance(value, dict):
                yield _normalized(value, model)
                inner = list(value.values())
                if len(inner) == 1 and isinstance(inner[0], dict):  # {"result": {...}}
                    yield _normalized(inner[0], model)
        return
    name, item_model = listed
    dicts = [v for v in values if isinstance(v, dict)]
    wrappers = [
        wrapper
        for value in reversed(dicts)
        if (wrapper := _as_wrapper(value, model, name, item_model)) is not None
    ]
    for wrapper in wrappers:
        yield _shaped_items(wrapper, name, item_model)
    if len(dicts) > 1 and not wrappers:  # one object per line (JSONL)
        yield _shaped_items({name: dicts}, name, item_model)
    for value in reversed(values):
        if isinstance(value, list):  # the list without its wrapper
            yield _shaped_items({name: value}, name, item_model)
        elif isinstance(value, dict) and _looks_like(value, item_model):  # a lone item
            yield _shaped_items({name: [value]}, name, item_model)


def list_field(model: type[BaseModel]) -> tuple[str, type[BaseModel]] | None:
    """The model's list-of-items field, if it is a wrapper: (name, item model)."""
    for name, info in model.model_fields.items():
        args = get_args(info.annotation)
        if get_origin(info.annotation) is list and args and _is_model(args[0]):
            return name, args[0]
    return None


def _is_model(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def canonical_key(key: str) -> str:
    """`subTopic`, `Sub-Topic`, `SUB TOPIC` -> `sub_topic`."""
    key = _CAMEL.sub("_", key.strip())
    return re.sub(r"[\s\-]+", "_", key).lower()


def _normalized(raw: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`raw` with its keys spelled as `model` spells them and its values coerced."""
    fields = model.model_fields
    spelled: dict[str, Any] = {}
    for key, value in raw.items():
        spelled.setdefault(canonical_key(str(key)), value)
    out: dict[str, Any] = {}
    for key, value in spelled.items():
        if key not in fields:
            target = next(
                (t for t in _KEY_ALIASES.get(key, ()) if t in fields and t not in spelled), key
            )
            if target in out:
                continue
            key = target
        info = fields.get(key)
        out[key] = _coerced(value, info.annotation, key) if info is not None else value
    return CutObject(out) if isinstance(raw, CutObject) else out


def _coerced(value: Any, annotation: Any, name: str) -> Any:
    """Scalars where text is wanted become text; digits become numbers; words any case."""
    options = _options(annotation)
    if str in options and not isinstance(value, str):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            return _JOINERS.get(name, "; ").join(str(v).strip() for v in value)
    if int in options and isinstance(value, str):
        digits = value.strip().lstrip("#")
        return int(digits) if digits.isdigit() else value
    words = [w for option in options if get_origin(option) is Literal for w in get_args(option)]
    if words and isinstance(value, str):
        word = canonical_key(value)
        if word in words:
            return word
        return next((w for w in _WORD_ALIASES.get(word, ()) if w in words), value)
    return value


def _options(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _looks_like(raw: dict[str, Any], item_model: type[BaseModel]) -> bool:
    """Whether `raw` holds every required field of an item."""
    normalized = _normalized(raw, item_model)
    required = [n for n, info in item_model.model_fields.items() if info.is_required()]
    return all(n in normalized for n in required)


def _as_wrapper(
    raw: dict[str, Any], model: type[BaseModel], name: str, item_model: type[BaseModel]
) -> dict[str, Any] | None:
    """`raw` as the wrapper object, also one level down (`{"result": {"facts": ...}}`)."""
    if name not in {canonical_key(str(k)) for k in raw}:
        inner = list(raw.values())
        if len(inner) == 1 and isinstance(inner[0], dict):
            wrapper = _as_wrapper(inner[0], model, name, item_model)
            if wrapper is not None:
                return wrapper
        if _looks_like(raw, item_model):
            return None
    normalized = _normalized(raw, model)
    return normalized if name in normalized else None


def _shaped_items(
    wrapper: dict[str, Any], name: str, item_model: type[BaseModel]
) -> dict[str, Any]:
    """The wrapper with its items as a list of normalized dicts."""
    items = wrapper.get(name)
    if isinstance(items, str):  # the list, encoded once more as a string
        decoded = [f.value for f in json_values(items)]
        items = decoded[0] if len(decoded) == 1 else decoded
    if isinstance(items, dict):
        items = [items] if _looks_like(items, item_model) else _rows(items, _names(item_model))
    if not isinstance(items, list):
        return {**wrapper, name: items}
    shaped = [_normalized(i, item_model) if isinstance(i, dict) else i for i in items]
    return {**wrapper, name: shaped}


def _names(item_model: type[BaseModel]) -> list[str]:
    return [n for n, info in item_model.model_fields.items() if info.is_required()]


def _rows(mapping: dict[str, Any], names: list[str]) -> list[Any]:
    """Items given as a mapping, `{"mood": "calm"}` or `{"work": {"title": "teacher"}}`."""
    rows: list[Any] = []
    for key, value in mapping.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows.extend({names[0]: key, **v} for v in value)
        elif isinstance(value, dict) and len(names) > 2:
            rows.extend({names[0]: key, **row} for row in _rows(value, names[1:]))
        elif isinstance(value, dict):
            rows.append({names[0]: key, **value})
        elif len(names) > 1:
            rows.append({names[0]: key, names[1]: value})
    return rows


def decoded_string(text: str) -> str | None:
    """The text of an answer that is one JSON string (an answer encoded twice)."""
    stripped = text.strip()
    if not (stripped.startswith('"') and stripped.endswith('"')):
        return None
    try:
        decoded = json.loads(stripped, strict=False)
    except ValueError:
        return None
    return decoded if isinstance(decoded, str) else None
