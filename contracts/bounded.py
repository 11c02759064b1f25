"""Parsing text from outside with bounded cost: YAML without aliases, nesting capped everywhere.

A 654-byte YAML document of nested aliases expands to gigabytes once constructed (and again
when the result is serialised), and 500 levels of nesting overflow PyYAML's recursive composer
(``RecursionError``) or orjson's encoder (254 levels). Refusing aliases keeps the parsed size
proportional to the text, and a depth cap keeps every later walk of it shallow.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from yaml.composer import ComposerError

__all__ = [
    "MAX_DEPTH",
    "BoundedSafeLoader",
    "TooDeep",
    "check_depth",
    "load_json",
    "load_yaml",
]

#: Deeper than any campaign, flow or webhook payload needs (an NCCO template is about 6).
MAX_DEPTH = 32


class TooDeep(ValueError):
    """A document nested deeper than :data:`MAX_DEPTH`."""


class BoundedSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``) and nesting beyond :data:`MAX_DEPTH`."""

    max_depth = MAX_DEPTH

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def _refuse(self, problem: str) -> ComposerError:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        return ComposerError(None, None, problem, mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise self._refuse("YAML aliases (*name) are not accepted: write the value out")
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise self._refuse(f"nested deeper than {self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """One YAML document with :class:`BoundedSafeLoader`; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=BoundedSafeLoader)  # a SafeLoader subclass: no tags run


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when ``value`` (parsed JSON) nests deeper than ``limit``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise TooDeep(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def load_json(raw: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """orjson's parse (its own limit is 1,024 levels) with the depth cap applied."""
    value = orjson.loads(raw)
    check_depth(value, limit)
    return value
