"""Chat: ask a question of the chosen collection; the answer streams in with its cited sources."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import streamlit as st

from core.errors import RagError
from core.trace import Trace
from core.types import NOT_FOUND_TEXT, Answer
from rag.web import (
    AnswerChoices,
    escape_markdown,
    friendly_message,
    get_service,
    highlighted_html,
    session_key,
    sidebar,
)

NOT_FOUND_HELP = ("Not found in your documents. The collection holds nothing that answers this well enough. "
                  "Try other words, pick another collection, or upload a document that covers it.")


def history() -> list[dict[str, Any]]:
    """This browser session's turns: question, collection, and the answer with its trace, or an error."""
    return st.session_state.setdefault("history", [])


def earlier_questions(collection: str | None) -> list[str]:
    """The conversation so far on this collection, oldest first: a follow-up is read against it."""
    return [turn["question"] for turn in history() if turn.get("collection") == collection]


def document_choice(collection: str | None) -> list[str]:
    """The sidebar's "Ask only these documents": the documents to keep the search to (none: all)."""
    if collection is None:
        return []
    try:
        names = [doc.source for doc in get_service().list_documents(collection)]
    except RagError as exc:
        st.sidebar.caption(friendly_message(exc))
        return []
    with st.sidebar:
        return st.multiselect(
            "Ask only these documents", names, key=f"only_documents::{collection}", placeholder="All documents",
            help="Answers come from the chosen documents alone; leave empty to ask the whole collection.")


def record_feedback(turn: dict[str, Any], helpful: bool) -> None:
    """Button callback: store the verdict with the request."""
    answer: Answer = turn["answer"]
    try:
        get_service().record_feedback(answer.request_id, helpful)
        turn["feedback"] = helpful
    except Exception as exc:  # feedback must never break the conversation
        turn["feedback_error"] = friendly_message(exc)


def render_answer(turn: dict[str, Any], index: int, streamed: bool = False) -> None:
    """The answer (unless it was just streamed), its sources, details and feedback buttons."""
    answer: Answer = turn["answer"]
    if answer.abstained:
        st.info(NOT_FOUND_HELP, icon=":material/search_off:")
        if answer.text and answer.text.strip() != NOT_FOUND_TEXT and not streamed:
            st.markdown(escape_markdown(answer.text))
    elif not streamed:
        st.markdown(escape_markdown(answer.text))
    if not answer.grounded and answer.unsupported_sentences:
        st.warning("Some sentences are not supported by the sources:  \n"
                   + "  \n".join(f"- {escape_markdown(s)}" for s in answer.unsupported_sentences))
    for warning in answer.warnings:
        st.caption(f":material/warning: {escape_markdown(warning)}")
    if answer.citations:
        st.caption("Closest passages" if answer.abstained else "Sources")
    for citation in answer.citations:
        label = f"[{citation.n}] {citation.document}, page {citation.page} (score {citation.score:.3f})"
        with st.expander(escape_markdown(label)):
            st.html(highlighted_html(citation.text, citation.supporting_sentence))
            if citation.supporting_sentence:
                st.caption(f"Highlighted: the sentence that supports the answer (support {citation.support:.2f}).")
    with st.expander("Details: search, timings, tokens, cost"):
        render_details(answer, turn["trace"], turn.get("documents") or [])
    render_feedback(turn, index)


def render_details(answer: Answer, trace: Trace, documents: list[str] | None = None) -> None:
    """What was searched for (a follow-up rewritten to stand alone), the documents it was kept to,
    this request's stage timings and fusion weights (from its trace), tokens, cost, cache hit and who answered."""
    if trace.standalone_question and trace.standalone_question != trace.question:
        st.caption(f"Searched for: **{escape_markdown(trace.standalone_question)}** "
                   "(the follow-up completed from the earlier questions)")
    if documents:
        st.caption("Only these documents: " + ", ".join(escape_markdown(d) for d in documents))
    cols = st.columns(4)
    cols[0].metric("Input tokens", answer.usage.input_tokens)
    cols[1].metric("Output tokens", answer.usage.output_tokens)
    cols[2].metric("Cost (USD)", f"{answer.cost_usd:.5f}")
    cols[3].metric("Cache hit", "yes" if answer.cache_hit else "no")
    if trace.timings_ms:
        st.dataframe(
            [{"stage": stage, "ms": round(ms, 1)} for stage, ms in trace.timings_ms.items()],
            hide_index=True,
        )
    if trace.weights is not None:
        st.caption(f"Search fused dense and keyword results with weights {trace.weights[0]:.2f} : "
                   f"{trace.weights[1]:.2f}.")
    st.caption(f"Answerer: {escape_markdown(answer.provider)} · Reranker: {escape_markdown(answer.reranker)}"
               f" · Request: {escape_markdown(trace.request_id)}")


def render_feedback(turn: dict[str, Any], index: int) -> None:
    """Helpful / not helpful buttons, or the recorded verdict."""
    answer: Answer = turn["answer"]
    if not answer.request_id:
        return
    if "feedback" in turn:
        st.caption("Thanks: recorded as " + ("helpful." if turn["feedback"] else "not helpful."))
        return
    if "feedback_error" in turn:
        st.caption(turn["feedback_error"])
    left, right, _ = st.columns([1, 1, 4])
    left.button("Helpful", key=f"helpful_{index}", icon=":material/thumb_up:",
                on_click=record_feedback, args=(turn, True))
    right.button("Not helpful", key=f"unhelpful_{index}", icon=":material/thumb_down:",
                 on_click=record_feedback, args=(turn, False))


def render_turn(turn: dict[str, Any], index: int) -> None:
    """One past question and its answer or error."""
    with st.chat_message("user"):
        st.markdown(escape_markdown(turn["question"]))
    with st.chat_message("assistant"):
        if turn.get("error"):
            st.error(turn["error"], icon=":material/error:")
        elif turn.get("answer") is not None:
            render_answer(turn, index)


def escaped_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """The streamed text pieces, escaped so document text never renders as markdown."""
    for piece in pieces:
        yield escape_markdown(piece)


def ask(question: str, choices: AnswerChoices, documents: list[str]) -> None:
    """Answer a new question (a follow-up read against the earlier ones; only `documents` when
    some are chosen), streaming it in, and keep it in the history (errors included)."""
    service = get_service()
    earlier = earlier_questions(choices.collection)
    turn: dict[str, Any] = {"question": question, "collection": choices.collection, "answer": None, "trace": None,
                            "documents": list(documents)}
    history().append(turn)
    index = len(history()) - 1
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        kwargs = {"top_k": choices.top_k, "reranker": choices.reranker, "answerer": choices.answerer,
                  "documents": documents, "history": earlier, "session": session_key()}
        try:
            stream = service.ask_stream(question, choices.collection, **kwargs)
            pieces = iter(stream)
            with st.spinner("Searching your documents..."):
                first = next(pieces, "")  # the search runs until the first piece is ready
            st.write_stream(escaped_pieces(chain([first], pieces)))
            turn["answer"], turn["trace"] = stream.result(), stream.trace
            render_answer(turn, index, streamed=True)
        except Exception as exc:  # every failure becomes a message; the conversation stays
            turn["answer"] = None
            turn["error"] = friendly_message(exc)
            st.error(turn["error"], icon=":material/error:")


choices = sidebar()
only_documents = document_choice(choices.collection) if choices.documents else []
st.title("Ask your documents")
if choices.collection is None:
    st.info("There is no collection yet. Upload documents on the Documents page, then ask here.")
    st.page_link("pages/documents.py", label="Go to Documents", icon=":material/upload_file:")
elif choices.documents == 0:
    st.info(f"The collection '{choices.collection}' has no documents yet. "
            "Upload some on the Documents page, then ask here.")
    st.page_link("pages/documents.py", label="Go to Documents", icon=":material/upload_file:")
else:
    only = (f"; only {', '.join(escape_markdown(d) for d in only_documents)}" if only_documents else "")
    st.caption(f"Asking the collection **{escape_markdown(choices.collection)}** "
               f"({choices.documents} documents{only}).")

for number, past in enumerate(history()):
    render_turn(past, number)

if st.session_state.get("history"):
    if st.sidebar.button("Clear conversation", icon=":material/delete_sweep:"):
        st.session_state["history"] = []
        st.rerun()

question = st.chat_input("Ask a question about your documents", disabled=not choices.documents)
if question:
    ask(question, choices, only_documents)
