"""Token counting with tiktoken cl100k_base, loaded offline, and model context windows."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

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


def _bundled_tiktoken_cache() -> Path | None:
    # llama-index-core ships cl100k_base's file, so counting works without a network.
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    return folder if folder.is_dir() else None


@lru_cache(maxsize=1)
def _encoding():  # noqa: ANN202
    import tiktoken

    bundled = _bundled_tiktoken_cache()
    if bundled is not None and not os.environ.get("TIKTOKEN_CACHE_DIR"):
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Tokens in `text` with cl100k_base (exact for OpenAI models, close for others)."""
    return len(_encoding().encode(text, disallowed_special=()))
