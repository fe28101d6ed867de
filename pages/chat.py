"""Chat: ask a question of the chosen collection; the answer streams in with its cited sources.

Conversations are saved (rag/conversations.py): the sidebar lists the collection's conversations, and
the address holds the open one (`?conversation=ID`) so a reload of the tab reopens it. A PDF source's
card shows its page with the passage highlighted (rag/pages_render.py); every card offers the file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import streamlit as st

from core.errors import RagError
from core.trace import Trace
from core.types import NOT_FOUND_TEXT, Answer, Citation
from rag.evidence import cited_source
from rag.web import (
    CITATION_LINKS_SCRIPT,
    AnswerChoices,
    escape_markdown,
    friendly_message,
    get_conversations,
    get_page_renderer,
    get_service,
    highlighted_html,
    linked_answer_markdown,
    page_view_html,
    session_key,
    sidebar,
    source_anchor,
)

NOT_FOUND_HELP = ("Not found in your documents. The collection holds nothing that answers this well enough. "
                  "Try other words, pick another collection, or upload a document that covers it.")


def history() -> list[dict[str, Any]]:
    """This browser session's turns: question, collection, and the answer with its trace, or an error."""
    return st.session_state.setdefault("history", [])


def current_conversation() -> str | None:
    """The id of the open conversation (None: a new one starts with the next question)."""
    return st.session_state.get("conversation_id")


def show_conversation(conversation_id: str | None) -> None:
    """Make a conversation the open one, in this session and in the address (a reload keeps it)."""
    st.session_state["conversation_id"] = conversation_id
    if conversation_id:
        st.query_params["conversation"] = conversation_id
    elif "conversation" in st.query_params:
        del st.query_params["conversation"]


def open_conversation(conversation_id: str) -> None:
    """Reopen a saved conversation: its turns, and its collection chosen in the sidebar."""
    store = get_conversations()
    conversation = store.get(conversation_id)
    if conversation is None:
        show_conversation(None)
        return
    st.session_state["history"] = store.turns(conversation_id)
    st.session_state["collection"] = conversation.collection
    st.session_state.pop("collection_choice", None)  # the sidebar then starts from "collection"
    st.session_state["conversation_collection"] = conversation.collection
    show_conversation(conversation_id)


def new_conversation() -> None:
    """Start afresh: the next question opens a new conversation."""
    st.session_state["history"] = []
    show_conversation(None)


def restore_conversation() -> None:
    """In a new browser session (a reload, a shared address), reopen the conversation the address names."""
    if "conversation_id" in st.session_state:
        return
    st.session_state["conversation_id"] = None
    wanted = st.query_params.get("conversation")
    if wanted:
        try:
            open_conversation(wanted)
        except Exception as exc:  # a broken store must not stop the page
            st.session_state["conversation_error"] = friendly_message(exc)


def follow_collection(collection: str | None) -> None:
    """Choosing another collection in the sidebar leaves the open conversation (it stays saved)."""
    if current_conversation() and st.session_state.get("conversation_collection") != collection:
        new_conversation()
    st.session_state["conversation_collection"] = collection


def rename_conversation(conversation_id: str) -> None:
    get_conversations().rename(conversation_id, st.session_state.get(f"title_{conversation_id}", ""))


def delete_conversation(conversation_id: str) -> None:
    get_conversations().delete(conversation_id)
    if current_conversation() == conversation_id:
        new_conversation()


def conversations_sidebar(collection: str | None, slot: Any) -> None:
    """The sidebar's conversations of this collection (title, date), and the open one's rename,
    export and delete, drawn into `slot` (a sidebar container made early, filled after the question)."""
    if collection is None:
        return
    with slot:
        st.subheader("Conversations")
        if st.session_state.get("conversation_error"):
            st.caption(st.session_state.pop("conversation_error"))
        try:
            store = get_conversations()
            saved = store.list(collection)
        except Exception as exc:  # the chat works without saved conversations
            st.caption(friendly_message(exc))
            return
        current = current_conversation()
        st.button("New conversation", icon=":material/add_comment:", on_click=new_conversation,
                  disabled=not history(), width="stretch")
        for conversation in saved[:50]:
            chosen = conversation.id == current
            st.button(f"{escape_markdown(conversation.title or 'Untitled')}  \n{conversation.when}",
                      key=f"conversation_{conversation.id}", on_click=open_conversation, args=(conversation.id,),
                      type="secondary" if chosen else "tertiary", width="stretch",
                      icon=":material/chat_bubble:" if chosen else None,
                      help="The open conversation" if chosen else "Reopen this conversation")
        if not saved:
            st.caption("Your questions here are saved as conversations.")
        opened = next((c for c in saved if c.id == current), None)
        if opened is None:
            return
        st.text_input("Title of this conversation", value=opened.title, key=f"title_{opened.id}", max_chars=80)
        left, right = st.columns(2)
        left.button("Rename", key="rename_conversation", on_click=rename_conversation, args=(opened.id,),
                    icon=":material/edit:", width="stretch")
        right.button("Delete", key="delete_conversation", on_click=delete_conversation, args=(opened.id,),
                     icon=":material/delete:", width="stretch")
        st.download_button("Export", data=store.export_markdown(opened.id), file_name=f"conversation-{opened.id}.md",
                           mime="text/markdown", icon=":material/download:", on_click="ignore",
                           key="export_conversation", width="stretch",
                           help="The questions, answers and cited passages as Markdown")


def save_turn(turn: dict[str, Any]) -> None:
    """Store a finished turn in the open conversation (a failure is said, the answer stays)."""
    conversation_id = current_conversation()
    if not conversation_id:
        return
    try:
        turn["position"] = get_conversations().add_turn(conversation_id, turn)
    except Exception as exc:
        st.caption(f"This answer could not be saved with the conversation: {friendly_message(exc)}")


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
        conversation_id = current_conversation()
        if conversation_id and "position" in turn:
            get_conversations().update_turn(conversation_id, turn["position"], turn)
    except Exception as exc:  # feedback must never break the conversation
        turn["feedback_error"] = friendly_message(exc)


def turn_key(index: int) -> str:
    """What keeps a turn's widgets apart from another conversation's: conversation id and turn number."""
    return f"{current_conversation() or 'new'}-{index}"


def render_answer(turn: dict[str, Any], index: int) -> None:
    """The answer with its `[n]` markers linked to the cards, its sources, details and feedback buttons."""
    answer: Answer = turn["answer"]
    numbers = {c.n for c in answer.citations}
    if answer.abstained:
        st.info(NOT_FOUND_HELP, icon=":material/search_off:")
        if answer.text and answer.text.strip() != NOT_FOUND_TEXT:
            st.markdown(linked_answer_markdown(answer.text, turn_key(index), numbers))
    else:
        st.markdown(linked_answer_markdown(answer.text, turn_key(index), numbers))
    if not answer.grounded and answer.unsupported_sentences:
        st.warning("Some sentences are not supported by the sources:  \n"
                   + "  \n".join(f"- {escape_markdown(s)}" for s in answer.unsupported_sentences))
    for warning in answer.warnings:
        st.caption(f":material/warning: {escape_markdown(warning)}")
    if answer.citations:
        st.caption("Closest passages" if answer.abstained else "Sources")
    for citation in answer.citations:
        label = f"[{citation.n}] {citation.document}, page {citation.page} (score {citation.score:.3f})"
        card = st.expander(escape_markdown(label), key=source_anchor(turn_key(index), citation.n), on_change="rerun")
        with card:
            if card.open:  # the page picture and the file only for an opened card
                render_evidence(turn, citation, index)
            st.html(highlighted_html(citation.text, citation.supporting_sentence))
            if citation.supporting_sentence:
                st.caption(f"Highlighted: the sentence that supports the answer (support {citation.support:.2f}).")
    with st.expander("Details: search, timings, tokens, cost"):
        render_details(answer, turn["trace"], turn.get("documents") or [])
    render_feedback(turn, index)


def render_evidence(turn: dict[str, Any], citation: Citation, index: int) -> None:
    """A PDF source's page with the passage highlighted (the text below stays the fallback), and
    the original file to download when it is kept."""
    service = get_service()
    source = cited_source(service, turn.get("collection") or service.settings.default_collection, citation)
    if source is None:
        st.caption("This passage is no longer in the collection.")
        return
    if source.is_pdf and source.original is not None:
        future = get_page_renderer().submit(source.original, source.sha256, source.page, source.text,
                                            source.start, citation.supporting_sentence)
        try:
            with st.spinner(f"Rendering page {source.page}..."):
                view = future.result(timeout=120)
        except Exception as exc:  # the text view below still shows the passage
            st.caption(f"The page could not be shown ({friendly_message(exc)}); its text follows.")
            view = None
        if view is not None and view.located:
            st.html(page_view_html(view, f"Page {source.page} of {source.file_name}"))
            st.caption(f"Page {source.page} of {escape_markdown(source.file_name)}: the cited passage is "
                       "highlighted, the supporting sentence framed.")
        elif view is not None:
            st.caption("The passage could not be located on the page picture; its text follows.")
    if source.original is not None:
        st.download_button("Download", data=source.original.read_bytes, file_name=source.file_name,
                           mime=source.mime, key=f"download-{turn_key(index)}-{citation.n}", on_click="ignore",
                           icon=":material/download:", help=f"The original file, {source.file_name}")
    else:
        st.caption("The original file is not kept here (it was not uploaded through the app).")


def prefetch_pages(turn: dict[str, Any]) -> None:
    """Start rendering the cited PDF pages in the background, so an opened card shows at once."""
    answer: Answer | None = turn.get("answer")
    if answer is None:
        return
    service = get_service()
    for citation in answer.citations:
        try:
            source = cited_source(service, turn.get("collection") or service.settings.default_collection, citation)
            if source is not None and source.is_pdf and source.original is not None:
                get_page_renderer().submit(source.original, source.sha256, source.page, source.text,
                                           source.start, citation.supporting_sentence)
        except Exception:  # only a head start: the card renders on its own when opened
            return


def render_details(answer: Answer, trace: Trace, documents: list[str] | None = None) -> None:
    """What was searched for (a follow-up rewritten to stand alone, a question without its instructions to
    the answerer), the documents it was kept to,
    this request's stage timings and fusion weights (from its trace), tokens, cost, cache hit and who answered."""
    if trace.standalone_question and trace.standalone_question != trace.question:
        st.caption(f"Searched for: **{escape_markdown(trace.standalone_question)}** "
                   "(the follow-up completed from the earlier questions)")
    if trace.searched and trace.searched != (trace.standalone_question or trace.question):
        st.caption(f"Searched as: **{escape_markdown(trace.searched)}** "
                   "(without the instructions to whoever answers, fiscal years as years, with any statement "
                   "they point to)")
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
    if not current_conversation() and choices.collection:
        try:
            show_conversation(get_conversations().create(choices.collection, question).id)
        except Exception as exc:  # the question is still answered, only not saved
            st.caption(f"This conversation cannot be saved: {friendly_message(exc)}")
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
            streamed = st.empty()
            streamed.write_stream(escaped_pieces(chain([first], pieces)))
            turn["answer"], turn["trace"] = stream.result(), stream.trace
            streamed.empty()  # shown again below with its [n] markers as links to the cards
            render_answer(turn, index)
        except Exception as exc:  # every failure becomes a message; the conversation stays
            turn["answer"] = None
            turn["error"] = friendly_message(exc)
            st.error(turn["error"], icon=":material/error:")
    save_turn(turn)
    prefetch_pages(turn)


restore_conversation()
choices = sidebar()
follow_collection(choices.collection)
st.html(CITATION_LINKS_SCRIPT, unsafe_allow_javascript=True)
only_documents = document_choice(choices.collection) if choices.documents else []
conversations_slot = st.sidebar.container()
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

question = st.chat_input("Ask a question about your documents", disabled=not choices.documents)
if question:
    ask(question, choices, only_documents)
conversations_sidebar(choices.collection, conversations_slot)
