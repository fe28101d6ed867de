"""Token counting with tiktoken's cl100k_base, loaded offline from the file llama-index-core ships."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import tiktoken

ENCODING_NAME = "cl100k_base"

_env_lock = threading.Lock()


def bundled_tiktoken_cache() -> Path:
    """The folder inside llama-index-core that holds the cl100k_base file tiktoken would download."""
    from core.language import bundled_data

    folders = bundled_data("tiktoken_cache")
    return folders[0] if folders else Path("llama-index-core is not installed")


@lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, loaded once; never reaches the network."""
    cache_dir = bundled_tiktoken_cache()
    if not cache_dir.is_dir():
        raise RuntimeError(
            f"The tokenizer file is missing ({cache_dir}); reinstall llama-index-core "
            "(`pip install --force-reinstall llama-index-core`)."
        )
    # tiktoken reads TIKTOKEN_CACHE_DIR while loading; point it at the bundled file, then restore.
    with _env_lock:
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        try:
            return tiktoken.get_encoding(ENCODING_NAME)
        finally:
            if previous is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def encode(text: str) -> list[int]:
    """Token ids of `text`; special-token strings such as <|endoftext|> count as plain text."""
    return get_encoding().encode_ordinary(text)


def count_tokens(text: str) -> int:
    """How many cl100k_base tokens `text` takes."""
    return len(encode(text))


def truncate_to_tokens(text: str, n: int) -> str:
    """The longest prefix of `text` that keeps within `n` tokens (whole characters only)."""
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    tokens = encode(text)
    if len(tokens) <= n:
        return text
    encoding = get_encoding()
    keep = n
    while keep > 0:
        # A token boundary can fall inside a character: drop the partial bytes.
        prefix = encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
        # Re-encoding a prefix can rarely take more tokens than the cut: shorten until it fits.
        if count_tokens(prefix) <= n:
            return prefix
        keep -= 1
    return ""
