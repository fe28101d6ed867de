"""A/B variants: named sets of pipeline choices, each given a share of the questions, sticky per session.

`RAG_AB=b:0.2,c:0.1` sends 20 % of sessions to variant b and 10 % to c; the rest get "control" (the
settings as they are). `RAG_AB_VARIANTS` says what each variant changes, e.g.
`{"b": {"reranker": "cohere", "top_k": 8}, "c": {"collection_suffix": "_fixed", "mode": "dense"},
"d": {"weights": [1.0, 0.5]}}`: a collection of the same documents chunked another way, retrieval mode,
the fusion weights (dense, sparse) of hybrid search, top_k, reranker, answerer, abstention threshold. A session's variant is a hash of its key, so the same session always
gets the same one, and the shares hold over many sessions without any state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CONTROL = "control"
# What a variant may change: the per-request options of the answer pipeline, and which collection.
VARIANT_OPTIONS = ("collection_suffix", "mode", "weights", "top_k", "reranker", "answerer", "abstain_threshold")
_MODES = ("hybrid", "dense", "sparse")


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B test: its name, its share of sessions and the choices it makes."""

    name: str
    share: float
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def collection_suffix(self) -> str:
        return str(self.options.get("collection_suffix") or "")

    def pipeline_options(self) -> dict[str, Any]:
        """The answer pipeline's options this variant sets (everything but the collection)."""
        return {k: v for k, v in self.options.items() if k != "collection_suffix"}


def parse_variants(spec: str | None, definitions: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[Variant, ...]:
    """`name:share,...` with each name's choices from `definitions`; () when A/B testing is off."""
    definitions = definitions or {}
    if not spec or not spec.strip():
        if definitions:
            raise ValueError("RAG_AB_VARIANTS defines variants but RAG_AB gives none a share: set RAG_AB=name:share,...")
        return ()
    variants = []
    for part in spec.split(","):
        name, sep, share_text = part.strip().partition(":")
        name = name.strip()
        try:
            share = float(share_text)
        except ValueError:
            share = -1.0
        if not sep or not name or not 0 < share <= 1:
            raise ValueError(f"RAG_AB: {part.strip()!r} is not name:share with a share in (0, 1], e.g. b:0.2")
        if name == CONTROL:
            raise ValueError(f"RAG_AB: {CONTROL!r} is the name of the requests no variant gets; name yours otherwise")
        options = dict(definitions.get(name, {}))
        unknown = sorted(set(options) - set(VARIANT_OPTIONS))
        if unknown:
            raise ValueError(f"RAG_AB_VARIANTS[{name!r}]: unknown choice(s) {', '.join(unknown)}; "
                             f"use {', '.join(VARIANT_OPTIONS)}")
        if "mode" in options and options["mode"] not in _MODES:
            raise ValueError(f"RAG_AB_VARIANTS[{name!r}]: mode must be one of {', '.join(_MODES)}")
        if "weights" in options:
            options["weights"] = _fusion_weights(name, options["weights"])
        variants.append(Variant(name, share, options))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"RAG_AB names a variant twice: {spec}")
    if sum(v.share for v in variants) > 1 + 1e-9:
        raise ValueError(f"RAG_AB: the shares add up to more than 1 ({spec})")
    undefined = sorted(set(definitions) - set(names))
    if undefined:
        raise ValueError(f"RAG_AB_VARIANTS defines {', '.join(undefined)}, which RAG_AB gives no share")
    return tuple(variants)


def _fusion_weights(name: str, value: Any) -> tuple[float, float]:
    """A variant's (dense, sparse) fusion weights: two numbers >= 0, not both 0."""
    try:
        dense, sparse = (float(w) for w in value)
    except (TypeError, ValueError):
        dense = sparse = -1.0
    if dense < 0 or sparse < 0 or dense + sparse == 0:
        raise ValueError(f"RAG_AB_VARIANTS[{name!r}]: weights must be [dense, sparse], two numbers >= 0 "
                         f"and not both 0 (got {value!r})")
    return dense, sparse


def session_point(session: str) -> float:
    """Where a session falls in [0, 1): a hash of its key, the same on every machine and run."""
    digest = hashlib.sha256(f"rag-ab:{session}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(variants: Sequence[Variant], session: str) -> Variant:
    """The variant of a session (the control, with no choices of its own, when none gets it)."""
    point, upper = session_point(session), 0.0
    for variant in variants:
        upper += variant.share
        if point < upper:
            return variant
    return Variant(CONTROL, 1 - sum(v.share for v in variants))


def describe_choices(name: str, variants: Mapping[str, Mapping[str, Any]]) -> str:
    """What an arm sets, for people: its choices and share of sessions (`variants`: name -> {"share", choices...},
    as RagService.ab_variants gives them), the control's "the settings as they are"."""
    if name == CONTROL:
        return "the settings as they are"
    if name not in variants:
        return "not in RAG_AB now"
    choices = {k: v for k, v in variants[name].items() if k != "share"}
    shown = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in choices.items()) or "nothing"
    return f"{shown} ({variants[name]['share']:.0%} of sessions)"
