"""A/B variants through the service and the answer pipeline: each session's questions go to its arm,
which answers with its own choices (here: another collection of the same notes, one source), and
every request records its arm."""

from __future__ import annotations

import json

import pytest

from core.settings import get_settings
from core.variants import CONTROL, assign, parse_variants
from rag.service import RagService

pytestmark = pytest.mark.integration

NOTES = ("The Zephyr turbine has three blades made of carbon fibre. It produces 4.2 megawatts at twelve metres "
         "per second. Crews inspect the gearbox every six months. The blades measure sixty metres each.\n")


def test_sessions_keep_their_variant_and_the_variant_answers_with_its_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_AB", "b:0.5")
    monkeypatch.setenv("RAG_AB_VARIANTS", json.dumps({"b": {"collection_suffix": "_fixed", "top_k": 1}}))
    settings = get_settings()
    variants = parse_variants(settings.ab, settings.ab_variants)
    sessions = [f"session-{i}" for i in range(40)]
    arms = {s: assign(variants, s).name for s in sessions}
    chosen = [s for s in sessions if arms[s] == "b"][:2] + [s for s in sessions if arms[s] == CONTROL][:2]
    notes = tmp_path / "zephyr.txt"
    notes.write_text(NOTES)
    service = RagService(settings, source="eval")
    try:
        service.ingest([notes], "notes")
        service.ingest([notes], "notes_fixed", service.chunking_options("fixed", 40, 0))
        for session in chosen:
            for question in ("What are the Zephyr blades made of?", "How often is the gearbox inspected?"):
                service.ask(question, "notes", session=session, top_k=5)
        rows = service.request_log.rows()
    finally:
        service.close()
    assert [r.variant for r in rows] == ["b", "b", "b", "b", CONTROL, CONTROL, CONTROL, CONTROL]
    assert {r.collection for r in rows if r.variant == "b"} == {"notes_fixed"}
    assert {r.collection for r in rows if r.variant == CONTROL} == {"notes"}
    assert all(len(r.sources) <= 1 for r in rows if r.variant == "b")  # the variant's top_k wins over the call's
    assert all(r.source == "eval" for r in rows)


def test_a_variant_sets_the_fusion_weights_of_hybrid_search(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_AB", "dense_heavy:0.5")
    monkeypatch.setenv("RAG_AB_VARIANTS", json.dumps({"dense_heavy": {"weights": [3.0, 1.0]}}))
    settings = get_settings()
    variants = parse_variants(settings.ab, settings.ab_variants)
    assert variants[0].pipeline_options() == {"weights": (3.0, 1.0)}
    sessions = [f"session-{i}" for i in range(40)]
    variant_session = next(s for s in sessions if assign(variants, s).name == "dense_heavy")
    control_session = next(s for s in sessions if assign(variants, s).name == CONTROL)
    notes = tmp_path / "zephyr.txt"
    notes.write_text(NOTES)
    service = RagService(settings, source="eval")
    try:
        service.ingest([notes], "notes")
        weights = {}
        for session in (variant_session, control_session):
            stream = service.ask_stream("What are the Zephyr blades made of?", "notes", session=session)
            stream.result()
            weights[session] = stream.trace.weights
        rows = service.request_log.rows()
    finally:
        service.close()
    # The dense weight is the variant's as set; the control fuses with the settings' (1.0). The sparse
    # weight follows BM25's spread (retrieval/fusion.py) from the weight given, the same here for both.
    assert weights[variant_session][0] == 3.0 and weights[control_session][0] == 1.0
    assert weights[variant_session][1] == weights[control_session][1]
    assert [r.variant for r in rows] == ["dense_heavy", CONTROL]
