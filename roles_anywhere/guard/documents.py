"""Values as CrossGuard hands them, made plain, and policy documents and templates read strictly.

Under ``pulumi preview``/``up`` a policy gets pulumi-policy's proxies (``_DictProxy``/``_ListProxy``,
which are a ``Mapping`` and a ``Sequence`` but no ``dict`` or ``list``), numbers as floats, and
sentinel strings for values not known yet. Every rule reads values through ``plain`` first, so an
``isinstance(x, list)`` never silently skips a proxied statement list.

A document that cannot be read exactly (not JSON, a byte-order mark, a repeated key, nesting
deeper than any policy needs) is an answer too: the guard cannot tell whom it trusts, so callers
refuse it instead of skipping it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    _DictProxy,
    _ListProxy,
)

from roles_anywhere.errors import load_json

MAX_DEPTH = 64
MAX_PROPERTY_DEPTH = 256  # deeper than protobuf's Struct carries: only documents read from text are limited
MAX_NODES = 200_000
UNKNOWN_VALUES = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)
_YAML_PREFIX = "tag:yaml.org,2002:"
_PLAIN_YAML_TAGS = frozenset(
    _YAML_PREFIX + name for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnreadableError(ValueError):
    """A document the guard cannot read exactly; the message says why, for the user."""


def plain(value: Any, _depth: int = 0) -> Any:
    """``value`` with pulumi-policy's proxies (and any other Mapping/Sequence) as dicts and lists.

    Unknown values stay their sentinel strings (``unknown_path`` finds them); nothing here raises
    ``UnknownValueError``, which proxies do on access.
    """
    if _depth > MAX_PROPERTY_DEPTH:
        raise UnreadableError(f"nested deeper than {MAX_PROPERTY_DEPTH} levels")
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {str(key): plain(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item, _depth + 1) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # protobuf carries every number as a float
    return value


def property_of(props: Any, *path: str) -> Any:
    """``props[path[0]][path[1]]…`` made plain, or None when a step is missing."""
    value = plain(props)
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def unknown_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where ``value`` (plain) holds a value not known yet (a ``pulumi preview``), else None."""
    pending: list[tuple[Any, tuple[str, ...]]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str) and item in UNKNOWN_VALUES:
            return where
        if isinstance(item, Mapping):
            pending.extend((v, (*where, str(k))) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((v, (*where, str(i))) for i, v in enumerate(item))
    return None


def require_known(value: Any, *path: str) -> None:
    """Raise pulumi-policy's ``UnknownValueError`` when ``value`` is not known yet.

    The analyzer turns it into "can't run policy … during preview"; ``pulumi up`` checks the value.
    """
    where = unknown_path(value, tuple(path))
    if where is not None:
        sentinel = value
        for step in where[len(path) :]:
            sentinel = sentinel[int(step)] if isinstance(sentinel, list) else sentinel[step]
        raise UnknownValueError(str(sentinel), list(where))


def read_document(raw: Any) -> Any:
    """A policy document from JSON text or an object; ``UnreadableError`` when it cannot be read exactly.

    JSON text must be one object with no byte-order mark and each key once (``json.loads`` keeps
    the last of two equal keys, so a reviewer and IAM could read two different policies).
    """
    raw = plain(raw)
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise UnreadableError("it starts with a byte-order mark")
        try:
            raw = load_json(raw)
        except ValueError as err:
            raise UnreadableError(f"it is not JSON that can be read exactly ({str(err)[:100]})") from None
        _check_depth(raw)
    if not isinstance(raw, Mapping):
        raise UnreadableError(f"it is {_kind(raw)}, not a JSON object")
    return raw


def read_template(raw: Any, *, lenient: bool = False) -> Any:
    """A CloudFormation template from JSON or YAML text (short-form tags such as ``!Sub``) or an object.

    Intrinsic functions come back in their long form (``{"Fn::Sub": …}``, ``{"Ref": …}``): values the
    guard cannot know. Aliases, repeated keys, deep nesting and tags outside YAML's plain types and
    CloudFormation's ``!Name`` form raise ``UnreadableError``. A scan that must see everything reads
    ``lenient``: a repeated key is kept under a new name, an alias is read where it was first
    written, and a scalar with any tag is its text.
    """
    raw = plain(raw)
    if not isinstance(raw, str):
        return raw
    if raw.startswith("\ufeff"):
        if not lenient:
            raise UnreadableError("it starts with a byte-order mark")
        raw = raw[1:]
    if raw.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(raw, object_pairs_hook=_kept_pairs) if lenient else load_json(raw)
        except (ValueError, RecursionError) as err:
            raise UnreadableError(f"it is not JSON that can be read exactly ({str(err)[:100]})") from None
        _check_depth(value)
        return value
    return _read_yaml(raw, lenient=lenient)


def _kept_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with every pair kept: a repeated key gets a new name (``Key (repeated 2)``)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        name, count = key, 1
        while name in document:
            count += 1
            name = f"{key} (repeated {count})"
        document[name] = value
    return document


def _read_yaml(text: str, *, lenient: bool) -> Any:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _yaml_value(root, loader, set(), 1, lenient)
    except yaml.YAMLError as err:
        raise UnreadableError(f"it is not YAML that can be read ({str(err).splitlines()[0][:100]})") from None
    except RecursionError:
        raise UnreadableError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _yaml_value(node: yaml.Node, loader: yaml.SafeLoader, seen: set[int], depth: int, lenient: bool) -> Any:
    if id(node) in seen:
        if lenient:
            return None  # a scan saw this node where it was first written
        raise UnreadableError(f"line {node.start_mark.line + 1}: a YAML alias reuses a node")
    seen.add(id(node))
    if depth > MAX_DEPTH:
        raise UnreadableError(f"nested deeper than {MAX_DEPTH} levels")
    tag = str(node.tag)
    intrinsic = tag.startswith("!") and not tag.startswith("!!")
    if not intrinsic and tag not in _PLAIN_YAML_TAGS and not lenient:
        line = node.start_mark.line + 1
        raise UnreadableError(f"line {line}: the YAML tag {tag[:60]!r} is not CloudFormation's")
    value: Any
    if isinstance(node, yaml.MappingNode):
        value = _yaml_mapping(node, loader, seen, depth, lenient)
    elif isinstance(node, yaml.SequenceNode):
        value = [_yaml_value(child, loader, seen, depth + 1, lenient) for child in node.value]
    elif intrinsic or tag not in _PLAIN_YAML_TAGS:
        value = node.value  # the scalar's text, escapes decoded
    else:
        try:
            value = loader.construct_object(node)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            if not lenient:
                raise UnreadableError(f"line {node.start_mark.line + 1}: a value cannot be read") from None
            value = node.value
    if intrinsic:
        name = tag[1:]
        return {"Ref" if name == "Ref" else f"Fn::{name}": value}
    return value


def _yaml_mapping(
    node: yaml.MappingNode, loader: yaml.SafeLoader, seen: set[int], depth: int, lenient: bool
) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = []
    names: set[str] = set()
    for key_node, value_node in node.value:
        key = _yaml_value(key_node, loader, seen, depth + 1, lenient)
        if not isinstance(key, str) and lenient:
            key = str(key)
        if not isinstance(key, str):
            raise UnreadableError(f"line {key_node.start_mark.line + 1}: a key is not text")
        if key in names and not lenient:
            raise UnreadableError(f"line {key_node.start_mark.line + 1}: the key {key[:60]!r} repeats")
        names.add(key)
        pairs.append((key, _yaml_value(value_node, loader, seen, depth + 1, lenient)))
    return _kept_pairs(pairs)


def _check_depth(value: Any) -> None:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise UnreadableError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, Mapping):
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)


def is_intrinsic(value: Any) -> bool:
    """A CloudFormation intrinsic function (``{"Ref": …}``, ``{"Fn::Join": …}``): unknown until deploy."""
    return isinstance(value, Mapping) and any(
        isinstance(key, str) and (key == "Ref" or key.startswith("Fn::")) for key in value
    )


def walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair and list item in ``value`` (plain), depth first; raises past MAX_NODES."""
    pending: list[tuple[str | None, Any]] = [(None, value)]
    count = 0
    while pending:
        key, item = pending.pop()
        count += 1
        if count > MAX_NODES:
            raise UnreadableError(f"it holds more than {MAX_NODES} values")
        yield key, item
        if isinstance(item, Mapping):
            pending.extend((str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((None, v) for v in item)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
