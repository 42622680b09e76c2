"""YAML for files someone else may have written: no aliases, no duplicate keys, bounded nesting.

Stack files arrive in pull requests. An alias bomb (a few hundred bytes that expand to gigabytes) would
exhaust memory, and a second ``workloads:`` key at the end of a file would silently replace the
reviewed one (PyYAML keeps the last). Both are refused with the line numbers, as is nesting deep enough
to exhaust the recursion limit.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64


class StrictYamlError(ValueError):
    """The document is YAML this project refuses to read; the message names the line."""


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise StrictYamlError(f"line {event.start_mark.line + 1}: YAML aliases (*name) are not accepted")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise StrictYamlError(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error follows
            if first != line:
                raise StrictYamlError(
                    f"line {line}: key {str(key)[:60]!r} repeats line {first} (a repeated key would "
                    "silently replace the first)"
                )
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """One YAML document, strictly; ``StrictYamlError`` or ``yaml.YAMLError`` when it cannot be read."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
