"""Watching a store's backend primitives from a test: how many writes and flushes, and what a reader
sees after each write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

WRITES = ("_write", "_delete", "_set_payload")


def counting(store: Any) -> Counter[str]:
    """Count every call of the backend's write primitives (and flushes) from now on."""
    calls: Counter[str] = Counter()
    for name in (*WRITES, "_flush"):
        primitive = getattr(store, name)

        def wrapped(*args: Any, _primitive: Any = primitive, _name: str = name) -> Any:
            calls[_name] += 1
            return _primitive(*args)

        setattr(store, name, wrapped)
    return calls


def after_each_write(store: Any, check: Callable[[str], None]) -> None:
    """Run `check(primitive name)` after every write primitive the store calls."""
    for name in WRITES:
        primitive = getattr(store, name)

        def wrapped(*args: Any, _primitive: Any = primitive, _name: str = name) -> None:
            _primitive(*args)
            check(_name)

        setattr(store, name, wrapped)
