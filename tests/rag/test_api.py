"""The REST API through the whole ASGI app (Streamlit + FastAPI, rag/server.py) on both stores: collections,
uploads good and bad, jobs, documents, answers as JSON and as a stream, feedback, errors as problem details."""

from __future__ import annotations

import json

import pytest

from tests.rag.conftest import serving, sse_events, wait_for_job

pytestmark = pytest.mark.integration

TURBINE = ("Wind farm report. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres "
           "per second. Its blades are made of carbon fibre and measure sixty metres each.")
CANTEEN = "Staff canteen. Lunch is served from noon until two o'clock and the menu changes every Monday."
ANSWER_FIELDS = {"answer", "abstained", "grounded", "citations", "unsupported_sentences", "timings_ms", "usage",
                 "cost_usd", "provider", "reranker", "cache_hit", "warnings", "standalone_question", "searched",
                 "request_id"}


def upload(client, collection: str, *files: tuple[str, bytes], **form: str):  # noqa: ANN001, ANN201
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(f"/api/v1/collections/{collection}/documents", files=parts, data=form)


def test_documents_and_answers_round_trip(api) -> None:  # noqa: ANN001
    assert api.get("/health").json()["status"] == "ok"
    assert api.get("/ready").json() == {"status": "ready"}
    assert api.post("/api/v1/collections", json={"name": "energy"}).json() == {"created": "energy"}
    assert api.get("/api/v1/collections").json() == {"collections": [{"name": "energy", "documents": 0,
                                                                      "chunks": 0}]}

    accepted = upload(api, "energy", ("turbine.txt", TURBINE.encode()), ("notes/canteen.md", CANTEEN.encode()),
                      ("photo.png", b"\x89PNG"), chunker="sentence", chunk_size="120", chunk_overlap="10")
    assert accepted.status_code == 202
    assert accepted.headers["location"] == f"/api/v1/jobs/{accepted.json()['id']}"
    assert accepted.json()["files_total"] == 3
    job = wait_for_job(api, accepted.json())
    assert job["status"] == "done" and job["files_done"] == 2, job
    files = job["report"]["files"]
    assert [(f["path"], f["status"]) for f in files] == [
        ("turbine.txt", "ingested"), ("notes/canteen.md", "ingested"), ("photo.png", "failed")]
    assert files[2]["error"].startswith("unsupported file type .png")
    assert job["report"]["chunks_added"] == files[0]["chunks"] + files[1]["chunks"] > 0

    listed = api.get("/api/v1/collections/energy/documents").json()
    assert listed["collection"] == "energy"
    docs = {d["source"]: d for d in listed["documents"]}
    assert set(docs) == {"turbine.txt", "notes/canteen.md"}
    assert docs["turbine.txt"]["chunker_settings"]["chunk_size"] == 120

    same = {"chunker": "sentence", "chunk_size": "120", "chunk_overlap": "10"}
    again = wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode()), **same).json())
    assert again["report"]["files"][0]["status"] == "skipped"  # unchanged: skipped, as rag ingest does
    other = wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode()), chunker="fixed").json())
    assert other["report"]["files"][0]["status"] == "ingested"  # other chunking: replaced whole

    answer = api.post("/api/v1/collections/energy/ask",
                      json={"question": "How much power does the Zephyr turbine produce?", "top_k": 3})
    assert answer.status_code == 200
    data = answer.json()
    assert set(data) == ANSWER_FIELDS
    assert "4.2 megawatts" in data["answer"] and not data["abstained"]
    assert data["citations"][0]["document"] == "turbine.txt"
    assert data["request_id"] and data["standalone_question"]

    only = api.post("/api/v1/collections/energy/ask",
                    json={"question": "When is lunch served?", "documents": ["notes/canteen.md"]}).json()
    assert {c["document"] for c in only["citations"]} <= {"canteen.md"}

    assert api.post("/api/v1/feedback", json={"request_id": data["request_id"], "helpful": True}).json() == {
        "request_id": data["request_id"], "helpful": True}

    deleted = api.delete("/api/v1/collections/energy/documents/notes/canteen.md")
    assert deleted.json()["document"] == "notes/canteen.md" and deleted.json()["deleted_chunks"] > 0
    assert [d["source"] for d in api.get("/api/v1/collections/energy/documents").json()["documents"]] == [
        "turbine.txt"]
    assert api.delete("/api/v1/collections/energy").json() == {"deleted": "energy"}
    assert api.get("/api/v1/collections").json() == {"collections": []}


def test_an_answer_streams_tokens_then_the_whole_answer(api) -> None:  # noqa: ANN001
    wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode())).json())
    with api.stream("POST", "/api/v1/collections/energy/ask", headers={"Accept": "text/event-stream"},
                    json={"question": "How much power does the Zephyr turbine produce?"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events("".join(response.iter_text()))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) > 2
    streamed = "".join(json.loads(data)["text"] for kind, data in events if kind == "token")
    final = json.loads(events[-1][1])
    assert set(final) == ANSWER_FIELDS
    assert streamed == final["answer"] and "4.2 megawatts" in streamed
    assert final["citations"] and final["citations"][0]["document"] == "turbine.txt"

    with api.stream("POST", "/api/v1/collections/nope/ask", headers={"Accept": "text/event-stream"},
                    json={"question": "anything"}) as missing:
        # An error before the first token is the response's status, not an event.
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_uploads_that_cannot_be_taken(api_home, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.01")
    limit = int(0.01 * 1024 * 1024)
    with serving() as api:
        check_refused_uploads(api, limit)


def check_refused_uploads(api, limit: int) -> None:  # noqa: ANN001
    unsupported = upload(api, "energy", ("a.exe", b"MZ"), ("b.zip", b"PK"))
    assert unsupported.status_code == 415
    body = unsupported.json()
    assert unsupported.headers["content-type"] == "application/problem+json"
    assert body["status"] == 415 and body["title"] == "Unsupported Media Type"
    assert [f["path"] for f in body["files"]] == ["a.exe", "b.zip"]
    assert all(f["status"] == "failed" and "unsupported file type" in f["error"] for f in body["files"])

    too_large = upload(api, "energy", ("big.txt", b"x" * (limit + 1)))
    assert too_large.status_code == 413
    assert too_large.json()["files"][0]["error"].startswith("file too large:")
    assert "over the limit" in too_large.json()["detail"]

    mixed = upload(api, "energy", ("big.txt", b"x" * (limit + 1)), ("small.txt", TURBINE.encode()))
    assert mixed.status_code == 202  # the Documents page's way: the rest goes in, the big one is listed
    job = wait_for_job(api, mixed.json())
    assert [(f["path"], f["status"]) for f in job["report"]["files"]] == [("big.txt", "failed"),
                                                                        ("small.txt", "ingested")]

    assert upload(api, "bad name!", ("a.txt", b"hello")).json()["detail"].startswith("Invalid collection name")
    bad_chunker = upload(api, "energy", ("a.txt", b"hello"), chunker="words")
    assert bad_chunker.status_code == 422 and "words" in bad_chunker.json()["detail"]
    climbing = wait_for_job(api, upload(api, "energy", ("../../etc/evil.txt", b"Climbing out.")).json())
    assert climbing["report"]["files"][0]["path"] == "etc/evil.txt"
    empty = wait_for_job(api, upload(api, "energy", ("empty.txt", b"")).json())
    assert empty["report"]["files"][0]["error"].startswith("empty file")
    no_files = api.post("/api/v1/collections/energy/documents", data={"chunker": "sentence"})
    assert no_files.status_code == 422 and no_files.json()["errors"][0]["field"] == "files"


def test_errors_are_problem_details_with_the_cli_messages(api_edge) -> None:  # noqa: ANN001
    api = api_edge
    missing = api.get("/api/v1/collections/nope/documents")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": "No collection named 'nope': ingest documents into it first (`rag ingest PATH --collection nope`)"
                  " or see `rag collections list`."}
    api.post("/api/v1/collections", json={"name": "empty"})
    no_doc = api.delete("/api/v1/collections/empty/documents/ghost.pdf")
    assert no_doc.status_code == 404
    assert no_doc.json()["detail"] == "No document 'ghost.pdf' in collection 'empty': `rag docs list` shows them."
    blank = api.post("/api/v1/collections/empty/ask", json={"question": "  "})
    assert blank.status_code == 422 and blank.json()["detail"] == "Type a question first."
    invalid = api.post("/api/v1/collections", json={"name": "no spaces"})
    assert invalid.status_code == 422 and invalid.json()["detail"].startswith("Invalid collection name 'no spaces'")
    shape = api.post("/api/v1/collections/empty/ask", json={"question": 3, "extra": 1})
    assert shape.status_code == 422 and {e["field"] for e in shape.json()["errors"]} == {"question", "extra"}
    assert api.post("/api/v1/collections/empty/ask", content=b"{", headers={"content-type": "application/json"}
                    ).status_code == 422
    assert api.get("/api/v1/jobs/unknown").json()["detail"].startswith("No job 'unknown'")
    assert api.post("/api/v1/feedback", json={"request_id": "x", "helpful": False}).status_code == 404
    unknown_route = api.get("/api/v1/nothing-here")
    assert unknown_route.status_code == 404 and unknown_route.json()["status"] == 404
    for response in (missing, no_doc, blank, invalid, shape, unknown_route):
        assert "Traceback" not in response.text


def test_openai_compatible_chat_completions(api_edge) -> None:  # noqa: ANN001
    api = api_edge
    wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode())).json())
    assert {m["id"] for m in api.get("/v1/models").json()["data"]} == {"energy"}
    question = {"role": "user", "content": "How much power does the Zephyr turbine produce?"}
    reply = api.post("/v1/chat/completions", json={"model": "energy", "messages": [
        {"role": "system", "content": "Be brief."}, question], "temperature": 0.2})
    assert reply.status_code == 200
    data = reply.json()
    assert data["object"] == "chat.completion" and data["model"] == "energy"
    message = data["choices"][0]["message"]
    assert message["role"] == "assistant" and "4.2 megawatts" in message["content"]
    assert "Sources:\n[1] turbine.txt, page 1" in message["content"]
    assert message["citations"][0]["document"] == "turbine.txt"
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]

    parts = {"role": "user", "content": [{"type": "text", "text": "How long are the blades?"}]}
    with api.stream("POST", "/v1/chat/completions",
                    json={"model": "energy", "messages": [question, parts], "stream": True}) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "sixty metres" in text and "Sources:" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"]

    unknown = api.post("/v1/chat/completions", json={"model": "nope", "messages": [question]})
    assert unknown.status_code == 404 and unknown.json()["error"]["message"].startswith("No collection named")
    nobody = api.post("/v1/chat/completions", json={"model": "energy", "messages": [{"role": "system",
                                                                                     "content": "hi"}]})
    assert nobody.status_code == 422 and nobody.json()["detail"] == "The messages hold no user message to answer."


def test_metrics_count_requests_stages_answers_and_ingestion(api_edge) -> None:  # noqa: ANN001
    api = api_edge
    wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode()), ("x.exe", b"MZ")).json())
    api.post("/api/v1/collections/energy/ask", json={"question": "How much power does the Zephyr turbine produce?"})
    api.post("/api/v1/collections/energy/ask", json={"question": "What is the colour of the moon's socks?"})
    api.post("/api/v1/collections/nope/ask", json={"question": "anything"})
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'rag_http_requests_total{method="POST",route="/api/v1/collections/{collection}/ask",status="200"} 2.0' in text
    assert 'route="/api/v1/collections/{collection}/ask",status="404"} 1.0' in text
    assert 'rag_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/api/v1/collections/{collection}/ask"}' in text
    for stage in ("embed", "retrieve", "generate", "total"):
        assert f'rag_stage_duration_seconds_count{{stage="{stage}"}} 2.0' in text
    assert 'rag_answers_total{outcome="error"} 1.0' in text
    answered = float(text.split('rag_answers_total{outcome="answered"} ')[1].split()[0])
    abstained = float(text.split('rag_answers_total{outcome="abstained"} ')[1].split()[0]) if (
        'outcome="abstained"' in text) else 0.0
    assert answered + abstained == 2.0
    assert f"rag_abstentions_total {abstained}" in text
    assert 'rag_llm_tokens_total{kind="input"} 0.0' in text and "rag_llm_cost_usd_total 0.0" in text
    assert 'rag_ingested_files_total{status="ingested"} 1.0' in text
    assert 'rag_errors_total{source="answer"} 1.0' in text
    assert "rag_ingested_chunks_total" in text and "_created" not in text


def test_one_collection_and_one_document(api) -> None:  # noqa: ANN001
    wait_for_job(api, upload(api, "energy", ("reports/turbine.txt", TURBINE.encode())).json())
    assert api.get("/api/v1/collections/energy").json() == api.get("/api/v1/collections").json()["collections"][0]
    listed = api.get("/api/v1/collections/energy/documents").json()["documents"][0]
    for name in ("reports/turbine.txt", "turbine.txt", listed["document_id"]):  # as listed, file name, id
        assert api.get(f"/api/v1/collections/energy/documents/{name}").json() == listed
    wait_for_job(api, upload(api, "energy", ("canteen.md", CANTEEN.encode())).json())
    emptied = api.delete("/api/v1/collections/energy/documents").json()
    assert sorted(emptied["deleted_documents"]) == ["canteen.md", "reports/turbine.txt"] and emptied["deleted_chunks"] > 1
    assert api.get("/api/v1/collections/energy").json() == {"name": "energy", "documents": 0, "chunks": 0}
    assert api.delete("/api/v1/collections/nope/documents").status_code == 404
    missing = api.get("/api/v1/collections/energy/documents/ghost.pdf")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No document 'ghost.pdf' in collection 'energy': `rag docs list` shows them."
    assert api.get("/api/v1/collections/nope").status_code == 404


def test_an_api_session_keeps_its_ab_variant(api_home, monkeypatch) -> None:  # noqa: ANN001
    from core.settings import get_settings
    from core.variants import assign, parse_variants
    from monitoring.request_log import RequestLog

    monkeypatch.setenv("RAG_AB", "b:0.5")
    monkeypatch.setenv("RAG_AB_VARIANTS", json.dumps({"b": {"top_k": 1}}))
    variants = parse_variants(get_settings().ab, get_settings().ab_variants)
    sessions = {assign(variants, f"user-{n}").name: f"user-{n}" for n in range(20)}
    with serving() as api:
        wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode())).json())
        for arm in ("b", "control"):
            for question in ("How much power does the Zephyr turbine produce?", "What are the blades made of?"):
                api.post("/api/v1/collections/energy/ask", json={"question": question, "session": sessions[arm]})
            api.post("/v1/chat/completions", json={"model": "energy", "user": sessions[arm],
                                                   "messages": [{"role": "user", "content": "How long are the blades?"}]})
    log = RequestLog(api_home / "logs" / "requests.sqlite")
    try:
        assert [r.variant for r in log.rows()] == ["b", "b", "b", "control", "control", "control"]
    finally:
        log.close()


def test_metrics_carry_the_figures_of_rag_monitor_prometheus(api_edge) -> None:  # noqa: ANN001
    from prometheus_client.parser import text_string_to_metric_families
    from typer.testing import CliRunner

    from rag.cli import app

    api = api_edge
    wait_for_job(api, upload(api, "energy", ("turbine.txt", TURBINE.encode())).json())
    for question in ("How much power does the Zephyr turbine produce?", "What is the colour of the moon's socks?"):
        api.post("/api/v1/collections/energy/ask", json={"question": question})
    api.post("/api/v1/collections/nope/ask", json={"question": "anything"})

    def monitor_samples(text: str) -> dict[tuple, float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text)
                if family.name.startswith("rag_monitor") for s in family.samples}

    scraped = monitor_samples(api.get("/metrics").text)
    printed = CliRunner().invoke(app, ["monitor", "--prometheus", "--window", "1d"])
    assert printed.exit_code in (0, 1, 2), printed.output
    assert scraped == monitor_samples(printed.output)
    assert scraped[("rag_monitor_requests", ())] == 3.0 and scraped[("rag_monitor_errors", ())] == 1.0
    assert ("rag_monitor_info", (("collection", ""), ("source", ""), ("window", "1d"))) in scraped
    assert any(name == "rag_monitor_latency_ms" for name, _ in scraped)


def test_a_store_held_by_another_process_is_503_with_the_cli_message(api_home) -> None:  # noqa: ANN001
    import subprocess
    import sys

    from core.errors import StoreBusyError
    from rag.service import RagService

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from rag.service import RagService; s = RagService(); "
         "s.create_collection('energy'); s.list_collections(); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreBusyError) as busy:
            RagService().list_collections()
        message = str(busy.value)  # what `rag collections list` prints
        with serving() as api:
            ready = api.get("/ready")
            assert ready.status_code == 503 and ready.json()["detail"] == f"Not ready: {message}"
            listed = api.get("/api/v1/collections")
            assert listed.status_code == 503 and listed.headers["content-type"] == "application/problem+json"
            assert listed.json()["detail"] == message and "Traceback" not in listed.text
            assert api.get("/health").status_code == 200  # the process is up: no restart
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_ready_follows_the_store_after_the_start(api_edge, monkeypatch) -> None:  # noqa: ANN001
    from core.errors import StoreError
    from rag.web import get_service

    assert api_edge.get("/ready").status_code == 200
    store = get_service().store

    def gone() -> list[str]:
        raise StoreError("Cannot reach the Qdrant server at http://qdrant:6333: connection refused")

    monkeypatch.setattr(store, "list_collections", gone)
    down = api_edge.get("/ready")
    assert down.status_code == 503
    assert down.json()["detail"] == "Not ready: Cannot reach the Qdrant server at http://qdrant:6333: connection refused"
    assert api_edge.get("/health").status_code == 200  # alive: Kubernetes stops sending traffic, no restart
    monkeypatch.undo()
    assert api_edge.get("/ready").status_code == 200
