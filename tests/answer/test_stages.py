"""The request path stage by stage: typed stages, the per-request trace, the one answerer protocol,
per-call options; and two requests at once through one service, each with its own trace."""

from __future__ import annotations

import threading
import time

import pytest

from answer.pipeline import check, draft, rerank, search, select
from core.citations import marker_numbers
from core.options import PipelineOptions
from core.settings import Settings
from core.stages import (
    Answerer,
    AnswerStream,
    Candidates,
    Context,
    Draft,
    Query,
    Ranked,
    word_pieces,
)
from core.trace import STAGES, Trace
from core.types import NOT_FOUND_TEXT, Answer, ScoredChunk


def _chunk(n: int, score: float, text: str = "") -> ScoredChunk:
    payload = {"file_name": f"doc{n}.txt", "document_id": f"d{n}", "page": 1, "start": 0, "end": 10}
    return ScoredChunk(id=f"c{n}", score=score, text=text or f"Chunk {n} says thing {n}.", payload=payload)


CHUNKS = [_chunk(1, 0.9), _chunk(2, 0.8), _chunk(3, 0.7)]


class _Retriever:
    """Records on the trace as HybridRetriever does."""

    def retrieve(self, collection, query, top_k, filters=None, *, mode=None, weights=None, trace=None):  # noqa: ANN001, ANN201
        if trace is not None:
            trace.add_time("embed", 1.0)
            trace.add_time("retrieve", 2.0)
            trace.weights = (1.0, 0.5)
        return CHUNKS[:top_k]


class _Answerer:
    """Answers from the first source, in two pieces."""

    name = "fake"

    def answer(self, question: str, sources: list[ScoredChunk]) -> Answer:
        return Answer(text=f"{sources[0].text} [1]", provider=self.name)

    def stream(self, question: str, sources: list[ScoredChunk]) -> AnswerStream:
        def pieces(stream: AnswerStream):  # noqa: ANN202
            answer = self.answer(question, sources)
            yield from word_pieces(answer.text)
            stream.finish(answer)

        return AnswerStream(pieces, sources=sources)


# -- stages ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_query_rejects_what_no_stage_could_answer():
    with pytest.raises(ValueError, match="Type a question"):
        Query("  ", "c", 5, 5)
    with pytest.raises(ValueError, match="top_k must be > 0"):
        Query("q", "c", 0, 5)
    with pytest.raises(ValueError, match="at least top_k"):
        Query("q", "c", 5, 3)


@pytest.mark.unit
def test_each_stage_hands_on_a_typed_record_and_records_on_the_trace():
    trace = Trace(question="q", collection="c")
    query = Query("q", "c", top_k=2, fetch=3)
    candidates = search(_Retriever(), query, trace)
    assert isinstance(candidates, Candidates) and [c.id for c in candidates.chunks] == ["c1", "c2", "c3"]
    ranked = rerank(None, candidates, trace)
    assert isinstance(ranked, Ranked) and ranked.reranker == "none" and len(ranked.chunks) == 2
    context = select(ranked, budget_tokens=1000, trace=trace)
    assert isinstance(context, Context) and context.query is query and [c.id for c in context.sources] == ["c1", "c2"]
    assert trace.scores["retrieve"] == [("c1", 0.9), ("c2", 0.8), ("c3", 0.7)]
    assert trace.scores["rerank"] == trace.scores["context"] == [("c1", 0.9), ("c2", 0.8)]
    assert trace.top_score == 0.9 and trace.weights == (1.0, 0.5)
    assert set(trace.timings_ms) == {"embed", "retrieve", "rerank"}


@pytest.mark.unit
def test_search_and_rerank_read_the_question_without_its_instructions_and_the_answerer_reads_it_whole():
    seen: dict[str, str] = {}

    class Recording(_Retriever):
        def retrieve(self, collection, query, top_k, filters=None, **options):  # noqa: ANN001, ANN003, ANN201
            seen["search"] = query
            return super().retrieve(collection, query, top_k, filters, **options)

    class Reranker:
        name = "recording"

        def rerank(self, query, chunks, top_k):  # noqa: ANN001, ANN201
            seen["rerank"] = query
            return chunks[:top_k]

    question = ("What was the FY2023 revenue (in USD millions)? Round your answer to two decimal places.")
    query = Query(question, "c", top_k=2, fetch=3)
    assert query.searched == "What was the 2023 revenue?"
    context = select(rerank(Reranker(), search(Recording(), query, Trace()), Trace()), 1000, Trace())
    assert seen == {"search": "What was the 2023 revenue?", "rerank": "What was the 2023 revenue?"}
    assert context.query.text == question  # an LLM gets the instructions; the extractive answerer reads past them
    assert Query("Which refrigerant?", "c", 2, 3).searched == "Which refrigerant?"
    pointed = Query("What was the 2023 capex? Use the cash flow statement.", "c", 2, 3)
    assert pointed.searched == "What was the 2023 capex? cash flow statement"  # where the answer is, searched for


@pytest.mark.unit
def test_a_failing_reranker_keeps_the_search_order_with_a_warning():
    class Broken:
        name = "broken"

        def rerank(self, query, chunks, top_k):  # noqa: ANN001, ANN201
            raise TimeoutError("slow")

    trace = Trace()
    ranked = rerank(Broken(), Candidates(Query("q", "c", 2, 3), tuple(CHUNKS)), trace, ("earlier note",))
    assert [c.id for c in ranked.chunks] == ["c1", "c2"] and ranked.reranker == "none"
    assert ranked.warnings[0] == "earlier note" and "Reranker broken failed" in ranked.warnings[1]
    assert "rerank" in trace.timings_ms


@pytest.mark.unit
def test_draft_streams_the_answerer_and_returns_the_draft():
    context = Context(Ranked(Query("q", "c", 1, 1), (CHUNKS[0],)), (CHUNKS[0],))
    steps = draft(_Answerer(), context)
    pieces = []
    try:
        while True:
            pieces.append(next(steps))
    except StopIteration as done:
        result = done.value
    assert isinstance(result, Draft) and "".join(pieces) == result.answer.text == "Chunk 1 says thing 1. [1]"

    empty = draft(_Answerer(), Context(Ranked(Query("q", "c", 1, 1), ()), ()))
    assert next(empty) == NOT_FOUND_TEXT
    with pytest.raises(StopIteration) as done:
        next(empty)
    assert done.value.value.answer.abstained and done.value.value.answer.provider == "fake"


@pytest.mark.unit
def test_check_stamps_the_answer_with_its_request():
    trace = Trace(question="q", collection="c")
    ranked = Ranked(Query("q", "c", 1, 1), (CHUNKS[0],), "cohere", ("a warning",))
    abstained = Answer(text=NOT_FOUND_TEXT, abstained=True, warnings=["own"])
    checked = check(Draft(Context(ranked, (CHUNKS[0],)), abstained), embedder=None, trace=trace)
    assert checked.trace is trace and checked.answer.request_id == trace.request_id
    assert checked.answer.reranker == "cohere" and checked.answer.warnings == ["a warning", "own"]
    assert checked.answer.question == "q"


# -- trace and stream -------------------------------------------------------------------------


@pytest.mark.unit
def test_trace_adds_times_and_times_failing_blocks():
    trace = Trace()
    trace.add_time("embed", 2.0)
    trace.add_time("embed", 3.0)
    with pytest.raises(RuntimeError), trace.timed("generate"):
        time.sleep(0.01)
        raise RuntimeError("provider down")
    assert trace.timings_ms["embed"] == 5.0 and trace.timings_ms["generate"] >= 10.0
    assert trace.top_score is None
    data = trace.to_dict()
    assert data["request_id"] == trace.request_id and data["timings_ms"]["embed"] == 5.0
    assert Trace().request_id != Trace().request_id
    assert STAGES == ("embed", "retrieve", "rerank", "generate", "total")


@pytest.mark.unit
def test_an_answer_stream_is_read_once_and_result_reads_the_rest():
    stream = _Answerer().stream("q", [CHUNKS[0]])
    assert stream.answer is None
    first = next(iter(stream))
    assert first == "Chunk "
    assert stream.result() is stream.answer and stream.answer.text.endswith("[1]")
    with pytest.raises(RuntimeError, match="read already"):
        list(stream)


@pytest.mark.unit
def test_both_answerers_implement_the_one_protocol(tmp_path):
    from answer.extractive import ExtractiveAnswerer
    from answer.pipeline import _check_answerer, make_answerer

    settings = Settings(home=tmp_path)
    assert isinstance(ExtractiveAnswerer(embedder=None), Answerer)
    assert isinstance(_Answerer(), Answerer)
    assert isinstance(make_answerer("extractive", settings, None), Answerer)

    class AnswersOnly:
        name = "old"

        def answer(self, question, sources):  # noqa: ANN001, ANN201
            return Answer(text="x")

    assert not isinstance(AnswersOnly(), Answerer)
    with pytest.raises(TypeError, match="Answerer protocol"):
        _check_answerer(AnswersOnly(), "old")


@pytest.mark.unit
def test_the_llm_answerer_is_an_answerer(tmp_path):
    from llm.answerer import LLMAnswerer
    from llm.chain import ProviderChain

    settings = Settings(home=tmp_path)
    chain = ProviderChain([], terminal=lambda q, s: Answer(text=NOT_FOUND_TEXT, abstained=True))
    assert isinstance(LLMAnswerer(chain, settings, use_cache=False), Answerer)


# -- options, names, markers ------------------------------------------------------------------


@pytest.mark.unit
def test_unset_options_take_the_settings_values_and_zero_stays_where_it_is_a_choice(tmp_path):
    from evaluation.config import EvalConfig

    settings = Settings(home=tmp_path, top_k=7, name_boost=3.0, reranker="none")
    chosen = PipelineOptions(top_k=None, reranker="", name_boost=0.0, chunk_overlap=0).resolved(settings)
    assert chosen.top_k == 7 and chosen.reranker == "none"
    assert chosen.name_boost == 0.0 and chosen.chunk_overlap == 0  # 0 turns the boost off, no overlap
    assert PipelineOptions(top_k=0, rrf_k=0).resolved(settings).top_k == 7  # 0 is no top_k: the setting's
    assert chosen.weights == tuple(settings.fusion_weights) and chosen.retrieval == settings.retrieval_mode
    evaluated = EvalConfig(top_k=3, label="x").resolved(settings)
    assert isinstance(evaluated, EvalConfig) and evaluated.top_k == 3 and evaluated.label == "x"
    assert evaluated.chunk_size == settings.chunk_size


@pytest.mark.unit
def test_the_registry_names_what_the_cli_and_the_web_app_offer():
    from llm.registry import EXTRACTIVE, PROVIDER_NAMES, answerer_choices, answerer_names

    choices = answerer_choices()
    assert choices[0] == EXTRACTIVE and "openai,extractive" in choices
    assert set(PROVIDER_NAMES) <= set(choices)
    assert answerer_names(" openai , extractive ") == ["openai", "extractive"]


@pytest.mark.unit
def test_one_marker_pattern_reads_single_and_grouped_citations():
    assert marker_numbers("A [1]. B [2, 3] and [4,5]. C [x] [ 6 ]") == [1, 2, 3, 4, 5]


# -- the whole request through the service -------------------------------------------------------

TURBINE = ("The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per second. "
           "Its blades are made of carbon fibre and measure sixty metres each.")
CRANE = ("The harbour crane lifts containers of forty tonnes. Its operators work in two shifts "
         "and inspect the hoist cable every morning.")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from rag.service import RagService

    home = tmp_path_factory.mktemp("stages")
    folder = home / "docs"
    folder.mkdir()
    (folder / "zephyr.txt").write_text(TURBINE)
    (folder / "crane.txt").write_text(CRANE)
    svc = RagService(Settings(home=home / "rag"))
    assert not svc.ingest([folder], "machines").failed
    yield svc
    svc.close()


@pytest.mark.integration
def test_the_answer_and_the_request_log_carry_the_requests_own_trace(service):
    stream = service.ask_stream("What are the Zephyr blades made of?", "machines")
    assert stream.trace is not None and stream.trace.question == "What are the Zephyr blades made of?"
    answer = stream.result()
    trace = stream.trace
    assert "carbon fibre" in answer.text and answer.request_id == trace.request_id
    assert answer.timings_ms == trace.timings_ms and set(trace.timings_ms) == set(STAGES)
    assert trace.weights is not None  # hybrid search fused the two lists here
    assert trace.scores["context"] == [(c.id, c.score) for c in stream.sources]
    row = service.request_log.rows()[-1]
    assert row.id == trace.request_id and row.timings == trace.timings_ms and row.top_score == trace.top_score


@pytest.mark.integration
def test_two_requests_at_once_through_one_service_keep_their_own_traces(service, monkeypatch):
    """Issue 15: Streamlit sessions share one cached service; one request must never record the
    other's timings. The question about the crane is slowed in its embedding by DELAY, while the
    other request runs through every stage; each trace must hold only its own time."""
    delay_s = 0.4
    embedder = service.embedder
    original = embedder.embed_query
    both_searching = threading.Barrier(2, timeout=30)

    def embed_query(text: str):  # noqa: ANN202
        both_searching.wait()  # both requests are inside the shared retriever at once
        if "crane" in text:
            time.sleep(delay_s)
        return original(text)

    service.ask("What do the crane operators inspect?", "machines")  # models and caches built
    shared = (service.retriever, service.answers, service.answers.retriever.store)
    attributes_before = [dict(vars(obj)) for obj in shared]
    monkeypatch.setattr(embedder, "embed_query", embed_query)
    questions = {"slow": "How heavy are the containers the harbour crane lifts?",
                 "fast": "How much power does the Zephyr turbine produce?"}
    results: dict[str, tuple[Answer, Trace]] = {}
    errors: list[BaseException] = []

    def ask(key: str) -> None:
        try:
            stream = service.ask_stream(questions[key], "machines")
            results[key] = (stream.result(), stream.trace)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(key,)) for key in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    (slow, slow_trace), (fast, fast_trace) = results["slow"], results["fast"]
    assert slow_trace is not fast_trace and slow_trace.request_id != fast_trace.request_id
    assert slow_trace.question == questions["slow"] and fast_trace.question == questions["fast"]
    assert slow_trace.timings_ms["embed"] >= delay_s * 1000
    assert fast_trace.timings_ms["embed"] < delay_s * 1000
    assert slow.timings_ms == slow_trace.timings_ms and fast.timings_ms == fast_trace.timings_ms
    assert "forty tonnes" in slow.text and "4.2 megawatts" in fast.text
    assert [c.document for c in slow.citations] == ["crane.txt"]
    assert [c.document for c in fast.citations] == ["zephyr.txt"]
    # Nothing of a request was left on the objects the requests share.
    for obj, before in zip(shared, attributes_before, strict=True):
        after = vars(obj)
        assert after.keys() == before.keys() and all(after[k] is before[k] for k in before), type(obj)
    rows = {r.id: r for r in service.request_log.rows()}
    for _, trace in results.values():
        assert rows[trace.request_id].question == trace.question
        assert rows[trace.request_id].timings == trace.timings_ms
