"""Registries of plug-ins keyed by name, with "did you mean" on a miss.

Connectors (by URL scheme), extract strategies, load strategies, check types,
SCD types and exporters are each one module that registers itself here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from crane.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → plug-in map that imports built-in plug-in modules lazily."""

    def __init__(self, kind: str, builtins: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        # name -> module that registers it when imported (keeps `import crane` light)
        self._builtins = dict(builtins or {})

    def register(self, *names: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            for name in names:
                self._items[name.lower()] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        key = name.lower()
        if key not in self._items and key in self._builtins:
            importlib.import_module(self._builtins[key])
        if key in self._items:
            return self._items[key]
        import difflib  # only for the error: a lookup that succeeds does not pay its import

        known = sorted(set(self._items) | set(self._builtins))
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; known: {', '.join(known) or 'none'}", hint=hint
        )

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._builtins))
