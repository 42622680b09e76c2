"""Resolve the Outputs inside a tree of stack outputs without wrapping every plain value in it.

``Output.from_input`` on a tree deeply unwraps it: every dict, list and leaf becomes an Output
(100,000 wrappers for the outputs of 1,000 workloads), and so does ``Output.all`` for an Output
whose value is a tree. The stack outputs hold a few thousand Outputs (the ARNs) among plain text,
so awaiting only those is the cheap way to the plain tree (measured: 0.5 s of a 3.6 s plan at
1,000 workloads went to such walks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pulumi

_Path = tuple[str | int, ...]
_Found = list[tuple[_Path, pulumi.Output[Any]]]


def resolved_tree(tree: Mapping[str, Any]) -> pulumi.Output[dict[str, Any]]:
    """``tree`` with its Outputs resolved (their values must be plain), as one Output."""
    plain, found = _split(tree)
    return pulumi.Output.all(*(output for _, output in found)).apply(
        lambda values: _fill(plain, found, values)
    )


def contains_output(tree: Any) -> bool:
    """Whether ``tree`` holds an Output anywhere (a plain one is exported as it is)."""
    if isinstance(tree, pulumi.Output):
        return True
    if isinstance(tree, Mapping):
        return any(contains_output(value) for value in tree.values())
    if isinstance(tree, list | tuple):
        return any(contains_output(value) for value in tree)
    return False


async def resolved_values(tree: Mapping[str, Any]) -> dict[str, Any]:
    """``tree`` with its Outputs awaited (an unknown one becomes None), whatever their values hold."""
    plain, found = _split(tree)
    values = await asyncio.gather(*(output.future() for _, output in found))
    return _fill(plain, found, list(values))


def _split(tree: Mapping[str, Any]) -> tuple[dict[str, Any], _Found]:
    """A copy of ``tree`` with None where each Output was, and the Outputs with their places."""
    found: _Found = []

    def walk(node: Any, path: _Path) -> Any:
        if isinstance(node, pulumi.Output):
            found.append((path, node))
            return None
        if isinstance(node, Mapping):
            return {key: walk(value, (*path, key)) for key, value in node.items()}
        if isinstance(node, list | tuple):
            return [walk(value, (*path, index)) for index, value in enumerate(node)]
        return node

    return {key: walk(value, (key,)) for key, value in tree.items()}, found


def _fill(
    plain: dict[str, Any], found: list[tuple[_Path, pulumi.Output[Any]]], values: list[Any]
) -> dict[str, Any]:
    for (path, _), value in zip(found, values, strict=True):
        node: Any = plain
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return plain
