"""One typed settings object, read from `RAG_*` environment variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.language import DEFAULT_LANGUAGE, check_language

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ChunkerName = Literal["fixed", "sentence", "recursive", "semantic"]
RetrievalMode = Literal["hybrid", "dense", "sparse"]
# Document boosts after fusion, applied in the order named (retrieval/boosts.py holds the plug-ins).
BoostName = Literal["names", "codes", "recency"]
# Quantization of the dense vectors a Qdrant server keeps (store/server.py).
QuantizationName = Literal["none", "scalar", "binary"]


# Default abstention threshold of the extractive answerer, on the score of the best sentence
# (answer/extractive.py). From the pooled dev splits of the visible evaluation sets (`rag calibrate
# docugami covidqa`, default settings: sentence chunks of 200 tokens, hybrid search, top 5, no
# reranker): the lowest threshold refusing >= 95 % of foreign and >= 60 % of hard negatives, pooled,
# was 0.507 once sentences lacking the question's names scored lower (0.528 before); at 0.51 the dev
# splits answered 92 % of COVID-QA and 52 % of docugami questions. Since a document's codes count
# ("10-Q", answer/extractive.py) the same rule gives 0.539, only because docugami's hard negatives
# are answered more (its own refusal of them falls to 0.70, still above 0.60; COVID-QA's stays 0.42);
# 0.51 is kept, chosen on the dev splits: at 0.54 they answer 65 % of the docugami questions whose
# filing is in the top 5 (75 % at 0.51) and 95 % of COVID-QA's (97 % at 0.51). Test-split figures:
# README, "Answers without an LLM". A collection calibrated on its own questions keeps its own
# (`rag calibrate DATASET --collection NAME`). With the sentence reranker (the default since) the
# rule gives 0.546; at 0.51 the dev splits answer 87 % of docugami's questions whose filing is in
# the top 5 and 97 % of COVID-QA's, refusing 67 % and 39 % of their hard negatives.
ABSTAIN_THRESHOLD = 0.51


class Settings(BaseSettings):
    """Every setting of the app. Each field is the env var `RAG_<FIELD>` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", env_ignore_empty=True, extra="ignore")

    home: Path = Field(default=PROJECT_ROOT / ".rag_home", description="Folder for all runtime state")
    default_collection: str = "samples"
    samples_dir: Path = Field(default=PROJECT_ROOT / "data" / "documents")

    # Store: Qdrant Edge in-process unless a server URL is given.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    # How a Qdrant server lays out each collection the app creates (README: Scaling); unset: the server's
    # defaults. Collections that exist keep their layout; the embedded store ignores these.
    qdrant_shards: int | None = Field(default=None, description="shards of a new collection (shard_number)")
    qdrant_replication_factor: int | None = Field(default=None, description="copies of each shard (a cluster)")
    qdrant_write_consistency: int | None = Field(
        default=None, description="copies that must apply a write before it succeeds (write_consistency_factor)")
    qdrant_on_disk_payload: bool | None = Field(default=None, description="payloads read from disk, not kept in RAM")
    qdrant_on_disk_vectors: bool | None = Field(default=None, description="full dense vectors on disk (memory-mapped)")
    qdrant_quantization: QuantizationName = Field(
        default="none", description="none | scalar (int8 copy of the dense vectors in RAM) | binary (1 bit)")
    qdrant_oversampling: float = Field(
        default=2.0, description="with quantization: candidates read per result, rescored with the full vectors")

    # Ingestion
    chunker: ChunkerName = "sentence"
    chunk_size: int = 200
    chunk_overlap: int = 20
    parent_chunk_size: int = 800
    max_file_mb: float = 50.0
    # The embedded store builds no search index by itself (every search scans its points): once a
    # collection holds this many points, each ingestion that adds chunks builds the index of what it
    # added (bench/README.md: dense search at 100k chunks 8.6 ms unindexed, 1.1 ms indexed). 0: never.
    index_points: int = Field(default=20_000, ge=0)
    embedding_model: str = Field(
        default="bundled:all-MiniLM-L6-v2",
        description="'bundled:all-MiniLM-L6-v2' (ships in a package) or any sentence-transformers path or name",
    )
    embedding_batch_size: int = 32
    # How chunks are embedded (and a cross-encoder reranker runs): onnx-int8 (exported once, cached under
    # onnx_cache, quantized: 2.9x torch), onnx (fp32, the same vectors as torch), torch; auto: onnx for
    # new collections when onnxruntime imports (else torch), and each stored collection in the space
    # its chunks are in. int8 chunks cost docugami answers on both splits (evaluation/baselines/README.md),
    # so they are chosen, never implied. Questions are embedded in fp32 whatever this is
    # (retrieval/embedder.py CollectionEmbedders).
    embedding_backend: Literal["auto", "onnx-int8", "onnx", "torch"] = Field(
        default="auto", description="auto | onnx-int8 | onnx | torch")
    onnx_cache: Path | None = Field(default=None, description="folder of ONNX exports (unset: RAG_HOME/cache/onnx)")
    # How the answer step embeds the sources' sentences (the extractive answerer's scoring, the
    # citation check): auto is the int8 export of the same model when onnxruntime imports, else the
    # chunks' embedder. Those vectors are never stored or compared with stored ones, and embedding
    # them is most of an answer's time on real filings (the docugami pipeline: p95 134 -> 87 ms with
    # int8, one run each). Dev splits, fp32 -> int8: answered with the gold in the top 5 at matched
    # refusal (pooled) 0.853 -> 0.849; at the default threshold docugami 0.866 both, one hard
    # negative of 48 more answered; COVID-QA 0.969 both.
    sentence_backend: Literal["auto", "onnx-int8", "onnx", "torch"] = Field(
        default="auto", description="auto (int8 when onnxruntime imports) | onnx-int8 | onnx | torch")

    # Retrieval and answers
    retrieval_mode: RetrievalMode = "hybrid"
    top_k: int = 5
    candidates: int = 60
    # Dense and sparse lists of `candidates` each, fused here by weighted RRF; chosen by measurement on
    # docugami and COVID-QA (evaluation/baselines/README.md): a small k keeps the top ranks decisive;
    # plain RRF (k=60, 1:1) lost to the better single retriever on both sets.
    fusion: str = Field(default="rrf", description="rrf (weighted, fused here) | dbsf (Qdrant's, in the store)")
    fusion_weights: tuple[float, float] = Field(default=(1.0, 1.0), description="RRF weights (dense, sparse)")
    rrf_k: int = 5
    # The sparse weight follows how far BM25's best hit stands out from its 20th (retrieval/fusion.py):
    # sparse weight = fusion_weights[1] * sparse_gain * (top1 / top20 - sparse_pivot), within [0, sparse_ceiling].
    sparse_gain: float = 2.0
    sparse_pivot: float = 1.1
    sparse_ceiling: float = 3.0
    # Chunks of documents whose file name holds words of the question, or the name a code in it
    # stands for ("INTC": Intel), rank higher: rank score x up to 1 + name_boost (0 turns it off).
    name_boost: float = 3.0
    # When a question asks for the latest/most recent, newer documents (by their own date) rank higher.
    recency_boost: float = 1.0
    # Which of those boosts run, in order (retrieval/boosts.py: what each was measured on). "codes"
    # feeds the name score, so name_boost is its strength too; code_weight is what an alias word
    # ("intel" for INTC) counts against a word of the file name itself.
    retrieval_boosts: Annotated[tuple[BoostName, ...], NoDecode] = Field(
        default=("names", "codes", "recency"),
        description="comma-separated: names, codes, recency (or 'none')",
    )
    code_weight: float = 1.0
    # Stopwords and stemming (answer grounding, name matching, BM25) and the "latest" cue.
    language: str = DEFAULT_LANGUAGE
    # "sentence" (no model): candidates rescored by their best sentence; on the dev splits it put the
    # passage higher (COVID-QA passage hit@1 0.498 -> 0.542) and answered more (docugami 0.750 -> 0.866).
    reranker: str = Field(default="sentence",
                          description="sentence | none | cross-encoder:<path or name> | cohere[:model]")
    answerer: str = Field(default="extractive", description="extractive | a provider chain such as 'openai,extractive'")
    context_tokens: int = 3000
    abstain_threshold: float = ABSTAIN_THRESHOLD

    # LLM providers
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    cohere_base_url: str = "https://api.cohere.com"
    cohere_model: str = "command-r-08-2024"
    cohere_rerank_model: str = "rerank-v3.5"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_model: str = "claude-3-haiku-20240307"
    local_model_path: Path | None = None
    # Local servers (llm/local_servers.py): Ollama's address (unset: OLLAMA_HOST, else 127.0.0.1:11434), its
    # model when the answerer names none, and a longer timeout for Ollama and llama.cpp's server (CPU models).
    ollama_host: str | None = Field(default=None, description="Ollama's address, e.g. http://127.0.0.1:11434")
    ollama_model: str = "llama3.2:1b"
    local_llm_timeout_s: float = 120.0
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 3
    llm_cache_ttl_s: int = 7 * 24 * 3600
    max_cost_per_request_usd: float | None = None
    price_overrides: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="model -> (input, output) USD per 1K tokens"
    )

    # Serving (`rag serve`, rag/server.py): who may call the API, and where the rag command finds it.
    api_keys: SecretStr | None = Field(
        default=None,
        description="keys for /api/v1 and /v1: comma-separated, or the path of a file of SHA-256 hashes, one a line",
    )
    metrics_keys: SecretStr | None = Field(default=None, description="keys for /metrics (same forms); unset: open")
    # The web UI's login (rag/web_login.py): an OpenID Connect provider for st.login; unset: the UI has no login.
    oidc_server_metadata_url: str | None = Field(default=None, description="the provider's "
                                                 ".well-known/openid-configuration URL")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_uri: str | None = Field(default=None, description="the app's address + /oauth2callback, as "
                                          "registered with the provider (unset: rag serve's own address)")
    oidc_cookie_secret: SecretStr | None = Field(default=None, description="signs the login cookie (unset: a new "
                                                 "one per process, so logins end with it)")
    web_allowed_users: str = Field(default="", description="comma-separated emails or @domains that may use the "
                                   "web UI once logged in; empty: anyone the provider logs in")
    # /metrics also carries `rag monitor --prometheus`'s figures (rag_monitor_*) over this window.
    metrics_monitor_window: str = Field(default="1d", description="window of the rag_monitor_* figures on /metrics "
                                        "(30m, 12h, 1d, all); 'off' leaves them out")
    server_url: str | None = Field(
        default=None, description="the server the rag command talks to; unset: the `rag serve` of this RAG_HOME")
    server_api_key: SecretStr | None = Field(default=None, description="the key the rag command sends to it")

    # Monitoring (monitoring/): alert thresholds, drift windows. Production targets for the retrieval
    # path (embed + search + rerank); a whole answer written by an LLM has its own, larger pair.
    alert_retrieval_p95_ms: tuple[float, float] = Field(default=(100.0, 200.0), description="warning, critical")
    alert_llm_answer_p95_ms: tuple[float, float] = Field(default=(5000.0, 15000.0), description="warning, critical")
    alert_error_rate: tuple[float, float] = Field(default=(0.001, 0.01), description="warning, critical")
    alert_psi: tuple[float, float] = Field(default=(0.1, 0.2), description="warning, critical")
    # Latest evaluation run against the committed baseline of its data set: drop in points (0-1 scale).
    alert_quality_drop: tuple[float, float] = Field(default=(0.02, 0.05), description="warning, critical")
    alert_evaluation_every_days: float = 7.0  # scheduled re-evaluation
    alert_new_chunks: int = 1000  # chunks added since the last evaluation: re-calibrate the threshold
    # Drift: the first N requests after a collection's last re-index (or `rag monitor --new-reference`)
    # against the last N; a fixed reference period instead when drift_reference_from is set.
    drift_reference_requests: int = 500
    drift_current_requests: int = 500
    drift_min_requests: int = 50
    drift_bins: int = 10
    drift_p_value: float = 0.01  # KS p-value below which a PSI above its threshold counts
    drift_components: int = 3
    drift_reference_from: str | None = Field(default=None, description="ISO date or time; with drift_reference_until")
    drift_reference_until: str | None = None
    # Without a fixed period: the reference is the first N requests after the last re-index, or after
    # the last evaluation run ("evaluation"); `rag monitor --new-reference` restarts it either way.
    drift_reference_after: Literal["reindex", "evaluation"] = "reindex"
    # A/B variants (core/variants.py): RAG_AB=name:share,... and what each changes.
    ab: str = Field(default="", description="name:share,... e.g. b:0.2 (empty: no A/B test)")
    ab_variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="name -> choices: collection_suffix, mode, weights [dense, sparse], top_k, "
        "reranker, answerer, abstain_threshold")
    ab_alpha: float = 0.01  # significance of each comparison of a variant with the control
    ab_min_effect: float = 0.05  # the smallest difference in a rate (abstention, errors) the verdict must see
    # Evaluation runs logged to MLflow when it is installed (the [mlflow] extra): auto | off.
    mlflow: Literal["auto", "off"] = "auto"

    @field_validator("chunk_size", "chunk_overlap", "top_k", "candidates", "parent_chunk_size")
    @classmethod
    def _non_negative(cls, value: int, info) -> int:  # noqa: ANN001
        if value < 0 or (value == 0 and info.field_name != "chunk_overlap"):
            raise ValueError(f"{info.field_name} must be > 0 (got {value})")
        return value

    @field_validator("alert_retrieval_p95_ms", "alert_llm_answer_p95_ms", "alert_error_rate", "alert_psi",
                     "alert_quality_drop")
    @classmethod
    def _warning_below_critical(cls, value: tuple[float, float], info) -> tuple[float, float]:  # noqa: ANN001
        if not 0 <= value[0] <= value[1]:
            raise ValueError(f"{info.field_name}: give [warning, critical] with 0 <= warning <= critical (got {list(value)})")
        return value

    @field_validator("retrieval_boosts", mode="before")
    @classmethod
    def _boost_names(cls, value: Any) -> tuple[str, ...]:
        names = value.split(",") if isinstance(value, str) else list(value or ())
        names = [str(n).strip().lower() for n in names if str(n).strip()]
        if names == ["none"]:
            return ()
        valid = get_args(BoostName)
        for name in names:
            if name not in valid:
                raise ValueError(f"Unknown retrieval boost {name!r}: use {', '.join(valid)} (comma-separated) or none.")
        return tuple(dict.fromkeys(names))

    @field_validator("qdrant_shards", "qdrant_replication_factor", "qdrant_write_consistency", mode="before")
    @classmethod
    def _whole_number_from_one(cls, value: Any, info) -> Any:  # noqa: ANN001
        if value is None:
            return None
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"RAG_{info.field_name.upper()} must be a whole number of 1 or more (got {value!r}); "
                             "leave it unset for the server's default.")
        return int(text)

    @field_validator("qdrant_on_disk_payload", "qdrant_on_disk_vectors", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any, info) -> Any:  # noqa: ANN001
        if isinstance(value, str) and value.strip().lower() not in {"true", "false", "1", "0", "yes", "no"}:
            raise ValueError(f"RAG_{info.field_name.upper()} must be true or false (got {value!r}); "
                             "leave it unset for the server's default.")
        return value

    @field_validator("qdrant_quantization", mode="before")
    @classmethod
    def _quantization_name(cls, value: Any) -> Any:
        name = str(value).strip().lower()
        if name not in get_args(QuantizationName):
            raise ValueError(f"RAG_QDRANT_QUANTIZATION must be none, scalar or binary (got {value!r}).")
        return name

    @field_validator("qdrant_oversampling")
    @classmethod
    def _oversampling_from_one(cls, value: float) -> float:
        if not value >= 1.0:
            raise ValueError(f"RAG_QDRANT_OVERSAMPLING must be 1 or more (got {value}): it multiplies the "
                             "candidates read from the quantized vectors.")
        return value

    @model_validator(mode="after")
    def _write_consistency_within_copies(self) -> Settings:
        copies, needed = self.qdrant_replication_factor, self.qdrant_write_consistency
        if copies is not None and needed is not None and needed > copies:
            raise ValueError(f"RAG_QDRANT_WRITE_CONSISTENCY ({needed}) exceeds RAG_QDRANT_REPLICATION_FACTOR "
                             f"({copies}): every write would wait for copies that do not exist.")
        return self

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return check_language(value)

    @model_validator(mode="after")
    def _variants_parse(self) -> Settings:
        from core.variants import parse_variants

        parse_variants(self.ab, self.ab_variants)
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    # Runtime folders, all under `home`.
    @property
    def stores_dir(self) -> Path:
        return self.home / "stores"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def onnx_dir(self) -> Path:
        return self.onnx_cache or self.cache_dir / "onnx"

    def ensure_dirs(self) -> None:
        """Create the runtime folders."""
        for folder in (self.stores_dir, self.uploads_dir, self.cache_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
