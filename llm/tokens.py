"""Model context windows (token counting itself is `core.tokens`)."""

from __future__ import annotations

from core.tokens import count_tokens

__all__ = ["context_window", "count_tokens", "lookup_by_prefix"]

DEFAULT_CONTEXT_WINDOW = 8192

# Longest matching prefix wins, so "gpt-4o-mini-2024-07-18" finds "gpt-4o-mini", not "gpt-4".
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4": 8192,
    "gpt-4-32k": 32768,
    "gpt-4-turbo": 128000,
    "gpt-4o": 128000,
    "gpt-4o-mini": 128000,
    "gpt-4.1": 1047576,
    "gpt-3.5-turbo": 16385,
    "claude-3": 200000,
    "claude-3-5": 200000,
    "claude-3-7": 200000,
    "claude-sonnet-4": 200000,
    "claude-opus-4": 200000,
    "command-r": 128000,
    "command-r-plus": 128000,
    "command-a": 256000,
}


def lookup_by_prefix(table: dict[str, object], model: str) -> object | None:
    """The value of the longest key that `model` starts with (case-insensitive), or None."""
    name = model.lower().rsplit("/", 1)[-1]
    best = max((key for key in table if name.startswith(key.lower())), key=len, default=None)
    return table[best] if best is not None else None


def context_window(model: str, overrides: dict[str, int] | None = None) -> int:
    """The context window of a model in tokens; 8k when the model is unknown."""
    table = {**CONTEXT_WINDOWS, **(overrides or {})}
    found = lookup_by_prefix(table, model)  # type: ignore[arg-type]
    return int(found) if found is not None else DEFAULT_CONTEXT_WINDOW
