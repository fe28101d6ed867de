"""Transformer models exported to ONNX once, quantized to int8, cached, and run with onnxruntime.

`ensure_export(model_folder, kind, cache_dir)` exports a sentence-transformers embedder (kind
"embedder": the encoder's last hidden state) or cross-encoder ("cross-encoder": the logits) with
`torch.onnx.export` of a small wrapper that passes `input_ids`, `attention_mask` and
`token_type_ids` by keyword (positional arguments collide with `use_cache` in transformers 5),
traced on padded inputs of mixed lengths with dynamic batch and sequence axes, so the attention
mask is honoured. `onnxruntime.quantization.quantize_dynamic` then writes the int8 copy (MatMul
weights per channel; per-tensor int8 gave cosine 0.94 to torch on MiniLM, per channel 0.99).
The fp32 graph of a BERT-family model is then fused by onnxruntime's transformer optimizer
(attention, embedding and skip layer norms, bias + GELU in single kernels: MiniLM embeds about 10 %
faster with the same vectors); it is kept only when it gives the plain graph's outputs.

The export lives in `cache_dir/<kind>-<name>-<key>/`, where the key hashes the model's files,
the CPU's instruction set (without VNNI, int8 weights use a reduced range to avoid saturation),
the onnxruntime version and this module's format: a changed model or another machine gets a new
export, an unchanged one is reused. A file lock keeps two processes from exporting at once.

`OnnxModel` runs an export with the `tokenizers` library and numpy: no torch at run time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import ConfigError

ExportKind = Literal["embedder", "cross-encoder"]

EXPORT_FORMAT = 2  # bump when the export or quantization recipe changes: every cache key changes
OPSET = 17
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
# Without VNNI, x86 int8 kernels multiply u8 x s8 pairs into saturating 16-bit sums (onnxruntime's
# quantization notes): 7-bit weights avoid that. VNNI and ARM instructions do not saturate.
NO_SATURATION = ("avx512_vnni", "avx_vnni", "amx", "arm64", "aarch64")

log = logging.getLogger(__name__)


class UnsupportedExport(ConfigError):
    """The model has a shape this exporter does not handle (pooling, extra layers, no fast tokenizer)."""


def onnxruntime_available() -> bool:
    """True when onnxruntime imports."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def cpu_instruction_set() -> str:
    """The best vector instruction set for int8 on this CPU: avx512_vnni, avx_vnni, avx512, avx2,
    sse4_2, or the machine name off x86 (arm64, aarch64)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i386", "i686"):
        return machine or "unknown"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    break
    except OSError:
        return machine
    for flag, name in (("amx_int8", "amx"), ("avx512_vnni", "avx512_vnni"), ("avx_vnni", "avx_vnni"),
                       ("avx512f", "avx512"), ("avx2", "avx2"), ("sse4_2", "sse4_2")):
        if flag in flags:
            return name
    return machine


def reduce_range_for(instruction_set: str) -> bool:
    """Whether int8 weights should use 7 bits on this instruction set (see NO_SATURATION)."""
    return instruction_set not in NO_SATURATION


_digests: dict[tuple[Any, ...], str] = {}


def model_files_digest(folder: Path) -> str:
    """sha256 over a model folder's file names and contents (memoised by names, sizes and mtimes)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts)
    stats = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo = (str(folder.resolve()), stats)
    if memo not in _digests:
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
        _digests[memo] = digest.hexdigest()
    return _digests[memo]


def export_key(folder: Path, kind: ExportKind) -> str:
    """What an export depends on, hashed: the model's files, the CPU, onnxruntime, this recipe."""
    import onnxruntime

    header = {"format": EXPORT_FORMAT, "opset": OPSET, "kind": kind, "files": model_files_digest(folder),
              "cpu": cpu_instruction_set(), "onnxruntime": onnxruntime.__version__}
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class OnnxExport:
    """One cached export: the fp32 and int8 graphs, the tokenizer, and what the model needs around them."""

    folder: Path
    manifest: dict[str, Any]

    def model_file(self, quantized: bool) -> Path:
        return self.folder / (INT8_FILE if quantized else FP32_FILE)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:60] or "model"


def ensure_export(model_folder: Path | str, kind: ExportKind, cache_dir: Path | str, *,
                  name: str | None = None) -> OnnxExport:
    """The cached export of the model in `model_folder`; exported (fp32 and int8) when missing."""
    from filelock import FileLock

    folder = Path(model_folder)
    if not folder.is_dir():
        raise ConfigError(f"No model folder at {folder}: ONNX export needs the model's local files.")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    prefix = f"{kind}-{_slug(name or folder.name)}-"
    target = cache / (prefix + export_key(folder, kind)[:16])
    if (target / MANIFEST).is_file():
        return _loaded(target)
    with FileLock(str(cache / f".{target.name}.lock")):
        if (target / MANIFEST).is_file():  # another process finished it while this one waited
            return _loaded(target)
        work = Path(tempfile.mkdtemp(dir=cache, prefix=".export-"))
        try:
            t0 = time.perf_counter()
            manifest = _export(folder, kind, work)
            manifest["seconds"] = round(time.perf_counter() - t0, 2)
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("Exported %s to ONNX in %.1f s: %s", folder, manifest["seconds"], target)
        _prune(cache, prefix, keep=target)
    return _loaded(target)


def _loaded(target: Path) -> OnnxExport:
    return OnnxExport(target, json.loads((target / MANIFEST).read_text(encoding="utf-8")))


def _prune(cache: Path, prefix: str, keep: Path) -> None:
    """Older exports of the same model (another key: changed files, CPU or recipe) go."""
    for stale in cache.glob(prefix + "*"):
        if stale != keep and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _export(folder: Path, kind: ExportKind, work: Path) -> dict[str, Any]:
    """Export fp32 and int8 graphs, the tokenizer and a manifest into `work`."""
    import onnxruntime
    import torch

    if kind == "embedder":
        model, tokenizer, extra = _embedder_parts(folder)
        output = "last_hidden_state"
        sample: list[Any] = ["A short one.", "A longer sentence, with more words in it, so the batch holds "
                             "padding: the mask must be honoured.", "Two words"]
    else:
        model, tokenizer, extra = _cross_encoder_parts(folder)
        output = "logits"
        sample = [("a question", "A short passage."),
                  ("another, longer question about it?", "A longer passage, with more words in it, so the "
                   "batch holds padding: the mask must be honoured.")]
    if not getattr(tokenizer, "is_fast", False):
        raise UnsupportedExport(f"{folder} has no fast tokenizer (tokenizer.json): ONNX export needs one.")
    inputs = [n for n in MODEL_INPUTS if n in tokenizer.model_input_names]
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise UnsupportedExport(f"{folder}: the tokenizer gives {tokenizer.model_input_names}, not input ids and mask")
    if kind == "embedder":
        encoded = tokenizer(sample, padding=True, return_tensors="pt")
    else:
        encoded = tokenizer([q for q, _ in sample], [t for _, t in sample], padding=True, return_tensors="pt")
    example = {n: encoded[n] for n in inputs}
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs}
    axes[output] = {0: "batch", 1: "sequence"} if output == "last_hidden_state" else {0: "batch"}
    fusable = _fusion_shape(model)
    if fusable and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # the attention subgraph the optimizer recognises
    wrapper = _keyword_model(model, inputs, output).eval()
    fp32 = work / FP32_FILE
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(wrapper, (), str(fp32), kwargs=example, input_names=inputs, output_names=[output],
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    instruction_set = cpu_instruction_set()
    _quantize(fp32, work / INT8_FILE, reduce_range_for(instruction_set))
    fused = _fuse(fp32, fusable, {n: encoded[n].numpy() for n in inputs}) if fusable else {}
    tokenizer.save_pretrained(str(work / "tokenizer"))
    if not (work / "tokenizer" / TOKENIZER).is_file():
        raise UnsupportedExport(f"{folder}: the tokenizer did not save a {TOKENIZER}")
    shutil.move(str(work / "tokenizer" / TOKENIZER), str(work / TOKENIZER))
    shutil.rmtree(work / "tokenizer", ignore_errors=True)
    return {
        "format": EXPORT_FORMAT, "kind": kind, "model": str(folder), "files": model_files_digest(folder),
        "inputs": inputs, "output": output, "cpu": instruction_set, "reduce_range": reduce_range_for(instruction_set),
        "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
        "pad_id": int(tokenizer.pad_token_id or 0), "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "fused": fused, **extra,
    }


PADDED_FILL = 0.8  # a batch takes no text shorter than this share of its longest (length_groups)
FUSION_TOLERANCE = 1e-3  # largest difference from the plain graph's outputs a fused graph may show


def _fusion_shape(model: Any) -> tuple[int, int] | None:
    """(attention heads, hidden size) of a BERT-family model the transformer optimizer fuses; else None."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in ("bert", "roberta", "xlm-roberta", "distilbert"):
        return None
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    return (int(heads), int(hidden)) if heads and hidden else None


def _fuse(fp32: Path, shape: tuple[int, int], feeds: dict[str, np.ndarray]) -> dict[str, int]:
    """Replace `fp32` by its fused graph when that gives the same outputs on `feeds` (a padded
    batch; token states compared where the mask is 1); the fused operators by kind, or {} when the
    plain graph stays."""
    import onnxruntime
    from onnxruntime.transformers.optimizer import optimize_model

    fused_file = fp32.with_name("fused-" + fp32.name)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the optimizer logs each fusion through the root logger
    try:
        optimized = optimize_model(str(fp32), model_type="bert", num_heads=shape[0], hidden_size=shape[1])
        counts = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(fused_file))
        outputs = [onnxruntime.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
                   for f in (fp32, fused_file)]
    except Exception as exc:  # noqa: BLE001 - an optimizer that cannot handle the graph leaves it as it is
        log.warning("ONNX fusion skipped for %s: %s", fp32, exc)
        fused_file.unlink(missing_ok=True)
        return {}
    finally:
        root.setLevel(level)
    gap = np.abs(outputs[0] - outputs[1])
    if gap.ndim == 3:  # token states: padding positions are never read (pooling skips them)
        gap = gap * feeds["attention_mask"][..., None]
    difference = float(gap.max())
    if not counts.get("Attention") or difference > FUSION_TOLERANCE:
        log.warning("ONNX fusion not kept for %s (fused %s, largest difference %.2g)", fp32, counts, difference)
        fused_file.unlink(missing_ok=True)
        return {}
    os.replace(fused_file, fp32)
    return counts


def _quantize(fp32: Path, int8: Path, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint through the root logger
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=reduce_range, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)


def _embedder_parts(folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The encoder, tokenizer and pooling of a sentence-transformers model: Transformer, then mean or
    CLS pooling, then at most a Normalize (anything else is unsupported)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer

    st = SentenceTransformer(str(folder), device="cpu")
    modules = list(st)
    if len(modules) < 2 or not isinstance(modules[0], Transformer) or not isinstance(modules[1], Pooling):
        raise UnsupportedExport(f"{folder}: ONNX export handles a Transformer then a Pooling module, "
                                f"not {[type(m).__name__ for m in modules]}")
    pooling = str(getattr(modules[1], "pooling_mode", ""))
    if pooling not in ("mean", "cls") or not all(isinstance(m, Normalize) for m in modules[2:]):
        raise UnsupportedExport(f"{folder}: ONNX export handles mean or CLS pooling and a Normalize, "
                                f"not pooling {pooling!r} with {[type(m).__name__ for m in modules[2:]]}")
    return modules[0].auto_model, st.tokenizer, {
        "pooling": pooling, "max_length": int(st.max_seq_length or 512),
        "dim": int(st.get_embedding_dimension() or 0)}


def _cross_encoder_parts(folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The sequence classifier and tokenizer of a sentence-transformers CrossEncoder, and the
    activation its `predict` applies (sigmoid or none)."""
    import torch
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(folder), device="cpu")
    if len(list(ce)) != 1 or not hasattr(ce[0], "auto_model"):
        raise UnsupportedExport(f"{folder}: ONNX export handles a sequence-classification cross-encoder, "
                                f"not {[type(m).__name__ for m in ce]}")
    activation = ce.activation_fn
    if isinstance(activation, torch.nn.Sigmoid):
        name = "sigmoid"
    elif isinstance(activation, torch.nn.Identity) or activation is None:
        name = "identity"
    else:
        raise UnsupportedExport(f"{folder}: ONNX export handles a sigmoid or no activation, not {activation!r}")
    max_length = getattr(ce, "max_length", None) or getattr(ce.tokenizer, "model_max_length", 512)
    return ce[0].auto_model, ce.tokenizer, {
        "activation": name, "num_labels": int(ce.num_labels), "max_length": int(min(max_length, 100_000))}


def _keyword_model(model: Any, inputs: Sequence[str], output: str) -> Any:
    """A torch module that calls `model` with its inputs by keyword and returns one output tensor."""
    import torch

    class KeywordModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            given = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None and "token_type_ids" in inputs:
                given["token_type_ids"] = token_type_ids
            return getattr(self.model(**given), output)

    return KeywordModel()


class OnnxModel:
    """An export run by onnxruntime on the CPU; tokenised by `tokenizers`, batched by length."""

    def __init__(self, export: OnnxExport, *, quantized: bool, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.export = export
        self.quantized = quantized
        manifest = export.manifest
        self.inputs: list[str] = list(manifest["inputs"])
        self.max_length = int(manifest["max_length"])
        self.pad_id = int(manifest.get("pad_id", 0))
        self.pad_type_id = int(manifest.get("pad_type_id", 0))
        self.tokenizer = Tokenizer.from_file(str(export.folder / TOKENIZER))
        self.tokenizer.no_padding()  # batches are padded here, after sorting by length
        self.tokenizer.enable_truncation(self.max_length)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads or quantized:
            # The int8 graph runs texts one by one, several at once (`outputs`): one thread each.
            options.intra_op_num_threads = threads or 1
        # Idle workers sleep instead of spinning: on a shared 2-core machine spinning threads took
        # CPU from the ones with work (int8 batches 7.5 vs 10.1 chunks/s, interleaved, one run).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(export.model_file(quantized)), options, providers=["CPUExecutionProvider"])

    def encode(self, items: Sequence[str] | Sequence[tuple[str, str]]) -> list[Any]:
        """Tokenised texts (or text pairs, truncated longest first), unpadded."""
        return self.tokenizer.encode_batch(list(items))

    def batches(self, encodings: list[Any], batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(positions, model inputs) per batch, longest first, each padded to its own longest.

        The int8 graph runs one text at a time: dynamic quantization scales a batch's activations
        as a whole, so a text's vector moved with its batch-mates and their padding (cosine 0.969 at
        worst between one docugami sentence embedded alone and in a batch of 16) and the same
        question could be answered differently after other questions. Alone it is as fast: no
        padding (800 sentences: 2.77 s alone, 2.66 s in batches; 300 chunks of 220 pieces: 4.69 s
        against 5.10 s; one run, bench-style)."""
        if self.quantized:
            batch_size = 1
        for positions in length_groups([len(e.ids) for e in encodings], batch_size):
            chosen = [encodings[i] for i in positions]
            width = max(1, max(len(e.ids) for e in chosen))
            ids = np.full((len(chosen), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(chosen), width), dtype=np.int64)
            types = np.full((len(chosen), width), self.pad_type_id, dtype=np.int64)
            for row, encoding in enumerate(chosen):
                n = len(encoding.ids)
                ids[row, :n] = encoding.ids
                mask[row, :n] = 1
                types[row, :n] = encoding.type_ids
            given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield positions, {name: given[name] for name in self.inputs}

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]

    def outputs(self, encodings: list[Any], batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray],
                                                                            np.ndarray]]:
        """(positions, model inputs, output) per batch of `batches`. The int8 graph's texts, each run
        alone, run on all cores at once, each on one thread (onnxruntime releases the GIL): the
        same vectors, and short sentences gain nothing from splitting one text's work across
        threads (13 docugami sentences: 45 ms one after another on two threads, 25 ms two at a
        time on one thread each; median of 40, one run at load 0.1)."""
        batches = list(self.batches(encodings, batch_size))
        if not self.quantized or len(batches) < 2:
            for positions, feeds in batches:
                yield positions, feeds, self.run(feeds)
            return
        pool = _run_pool()
        for (positions, feeds), output in zip(batches, pool.map(self.run, [f for _, f in batches]), strict=True):
            yield positions, feeds, output


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
MAX_RUN_THREADS = 8


def _run_pool() -> ThreadPoolExecutor:
    """One pool per process for the int8 graph's single-text runs, a thread per available core."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            _POOL = ThreadPoolExecutor(max(1, min(MAX_RUN_THREADS, cores)), thread_name_prefix="onnx-int8")
        return _POOL


def length_groups(lengths: Sequence[int], batch_size: int, fill: float | None = None) -> list[np.ndarray]:
    """Positions of `lengths` in batches, longest first: a batch ends at `batch_size` rows or at
    the first text shorter than `fill` of its longest, so no row is mostly padding. A question's
    two dozen sentences hold one 175-piece table row among 25-piece sentences: padded together,
    most of the work was padding (the answer step's embedding of docugami's questions: p95 242 ms
    in batches of 32, 105 ms in these; the vectors are the same)."""
    fill = PADDED_FILL if fill is None else fill
    order = np.argsort([-n for n in lengths], kind="stable")
    groups: list[list[int]] = []
    for i in order:
        group = groups[-1] if groups else None
        if group is None or len(group) >= batch_size or lengths[i] < fill * lengths[group[0]]:
            groups.append([int(i)])
        else:
            group.append(int(i))
    return [np.asarray(g, dtype=np.int64) for g in groups]


def mean_pool_normalised(hidden: np.ndarray, mask: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """Sentence vectors from token states as sentence-transformers makes them: mean over the
    unmasked tokens (or the first token for CLS pooling), then L2-normalised."""
    if pooling == "cls":
        pooled = hidden[:, 0, :]
    else:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
