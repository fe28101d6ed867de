"""The Streamlit side of the service layer: one cached RagService, the shared sidebar, safe text rendering.

Pages and this module are the only places that import streamlit.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import uuid
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st

from core.citations import MARKER
from core.errors import CollectionNotFoundError, ConfigError, RagError, StoreBusyError
from core.language import as_shown
from core.settings import Settings
from llm.errors import ProviderError
from llm.registry import ANSWERER_HELP, EXTRACTIVE, RERANKER_HELP, RERANKER_NAMES, answerer_choices
from rag.conversations import ConversationStore
from rag.pages_render import PageRenderer, PageView
from rag.service import CollectionInfo, RagService

# Every ASCII punctuation mark may be backslash-escaped in CommonMark; escaping them all keeps
# markdown, HTML tags, LaTeX ($) and Streamlit's :directives[] from being interpreted.
logger = logging.getLogger(__name__)
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&\"'])")


@st.cache_resource(show_spinner=False)
def get_service() -> RagService:
    """The process-wide service: settings read fresh from the environment once, heavy parts built lazily."""
    return RagService(Settings(), source="web")


@st.cache_resource(show_spinner=False)
def get_conversations() -> ConversationStore:
    """The saved conversations of this RAG_HOME (conversations.sqlite)."""
    return ConversationStore(get_service().settings.home / "conversations.sqlite")


@st.cache_resource(show_spinner=False)
def get_page_renderer() -> PageRenderer:
    """The process's renderer of cited PDF pages, caching pictures under RAG_HOME/cache/pages."""
    return PageRenderer(get_service().settings.cache_dir)


@st.cache_resource(show_spinner="Preparing the sample documents (first start only)...")
def prepare_samples() -> str | None:
    """Ingest the shipped samples once per process when the default collection is empty; a message on failure."""
    try:
        get_service().ensure_samples()
    except RagError as exc:
        return f"The sample documents could not be prepared: {exc}"
    return None


def session_key() -> str:
    """This browser session's key: A/B variants stay the same for all of a session's questions."""
    if "session_key" not in st.session_state:
        st.session_state["session_key"] = uuid.uuid4().hex
    return st.session_state["session_key"]


@dataclass
class AnswerChoices:
    """What the sidebar chose for the next question."""

    collection: str | None
    top_k: int
    reranker: str
    answerer: str
    documents: int = 0


def escape_markdown(text: str) -> str:
    """Text made safe for st.markdown: shown literally, never interpreted as markdown or HTML."""
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", text)
    # Markdown joins single newlines; a trailing double space keeps the document's line breaks.
    return escaped.replace("\n", "  \n")


def highlighted_html(text: str, sentence: str) -> str:
    """A chunk as escaped HTML with the supporting sentence inside <mark>; only our own tags remain."""
    match = _find_loosely(text, sentence)
    text = as_shown(text)  # same length: the match's offsets still hold
    if match is None:
        body = html.escape(text)
    else:
        start, end = match
        body = (html.escape(text[:start]) + '<mark class="rag-support">' + html.escape(text[start:end])
                + "</mark>" + html.escape(text[end:]))
    return f'<div class="rag-chunk" style="white-space: pre-wrap; line-height: 1.5">{body}</div>'


def source_anchor(turn: int, number: int) -> str:
    """The key (and CSS class `st-key-...`) of a turn's citation card `number`; `[n]` links point at it."""
    return f"source-{turn}-{number}"


def linked_answer_markdown(text: str, turn: int, numbers: Container[int]) -> str:
    """An answer as escaped markdown whose `[n]` markers are links to the turn's citation cards
    (only for numbers in `numbers`; others stay plain text)."""
    pieces, last = [], 0
    for match in MARKER.finditer(text):
        pieces.append(escape_markdown(text[last:match.start()]))
        links = [f"[{n}](#{source_anchor(turn, int(n))})" if int(n) in numbers else n
                 for n in re.split(r"\s*,\s*", match.group(1))]
        pieces.append("\\[" + ", ".join(links) + "\\]")
        last = match.end()
    pieces.append(escape_markdown(text[last:]))
    return "".join(pieces)


# One listener for the whole page: a click on an `[n]` link opens its card (a closed expander) and
# scrolls to it. Installed once per browser tab; it only reads the page's own elements.
CITATION_LINKS_SCRIPT = """<script>
if (!window.__ragCitationLinks) {
  window.__ragCitationLinks = true;
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[href^="#source-"]');
    if (!link) { return; }
    event.preventDefault();
    event.stopPropagation();
    var card = document.querySelector(".st-key-" + link.getAttribute("href").slice(1));
    if (!card) { return; }
    var details = card.querySelector("details");
    var summary = card.querySelector("summary");
    if (summary && details && !details.open) { summary.click(); }
    var show = function () { card.scrollIntoView({behavior: "auto", block: "start"}); };
    show();
    setTimeout(show, 400);
    setTimeout(show, 1500);
  }, true);
}
</script>"""


def page_view_html(view: PageView, alt: str) -> str:
    """A rendered page as an image with the passage's boxes (and its sentence's, stronger) laid over it;
    the boxes are percentages of the picture, so they follow it at any display width."""
    data = base64.b64encode(view.image.read_bytes()).decode("ascii")

    def boxes(items: list, kind: str, style: str) -> str:
        return "".join(
            f'<div class="rag-box {kind}" style="position:absolute; left:{b.left * 100:.3f}%; '
            f'top:{b.top * 100:.3f}%; width:{b.width * 100:.3f}%; height:{b.height * 100:.3f}%; {style}"></div>'
            for b in items)

    return (f'<div class="rag-page" style="position:relative; width:100%; max-width:{view.width}px; '
            'border:1px solid rgba(128,128,128,.4)">'
            f'<img class="rag-page-image" alt="{html.escape(alt)}" src="data:image/png;base64,{data}" '
            'style="display:block; width:100%; height:auto">'
            + boxes(view.passage, "rag-box-passage", "background:rgba(255,214,0,.28)")
            + boxes(view.sentence, "rag-box-sentence",
                    "background:rgba(255,140,0,.30); outline:2px solid rgba(230,100,0,.9)")
            + "</div>")


# Between two words of a sentence as answers quote it, its Markdown may hold markup and a link's
# address: "called **[My Shortcuts](https://coda.io/shortcuts)**." quoted as "called My Shortcuts."
_MARKUP_BETWEEN = r"(?:\]\([^()\s]*\)|\](?!\()|[^\w\]]|_)+"  # each character read one way only


def _find_loosely(text: str, sentence: str) -> tuple[int, int] | None:
    """Where a sentence sits in a text, allowing any run of whitespace (PDF lines break mid-sentence),
    else its words with any punctuation or Markdown markup between them (`core.markup.readable`)."""
    words = sentence.split()
    if not words:
        return None
    found = re.search(r"\s+".join(re.escape(w) for w in words), text)
    if found is None:
        bare = re.findall(r"[^\W_]+", sentence)
        found = re.search(_MARKUP_BETWEEN.join(re.escape(w) for w in bare), text) if bare else None
    return (found.start(), found.end()) if found else None


def list_collections_safely() -> list[CollectionInfo]:
    """The collections, or none with an error shown when the store cannot be read."""
    try:
        return get_service().list_collections()
    except RagError as exc:
        show_error(exc)
        return []


def sidebar() -> AnswerChoices:
    """The shared sidebar: collection with counts, answer settings, and what is active."""
    service = get_service()
    settings = service.settings
    warning = prepare_samples()
    collections = list_collections_safely()
    infos = {c.name: c for c in collections}
    names = list(infos)
    with st.sidebar:
        if warning:
            st.warning(warning)
        if names:
            current = st.session_state.get("collection")
            default = current if current in infos else settings.default_collection
            index = names.index(default) if default in infos else 0
            collection = st.selectbox(
                "Collection", names, index=index, key="collection_choice",
                format_func=lambda n: f"{n} ({infos[n].documents} docs, {infos[n].chunks} chunks)",
            )
            st.session_state["collection"] = collection
        else:
            collection = None
            st.info("No collections yet: upload documents on the Documents page.")
        with st.expander("Answer settings", expanded=False):
            top_k = st.number_input("Sources per answer (top_k)", min_value=1, max_value=50,
                                    value=settings.top_k, step=1, key="top_k")
            reranker = st.selectbox("Reranker", _with_default(settings.reranker, RERANKER_NAMES),
                                    key="reranker", accept_new_options=True, help=RERANKER_HELP)
            answerer = st.selectbox("Answerer", _with_default(settings.answerer, answerer_choices()),
                                    key="answerer", accept_new_options=True, help=ANSWERER_HELP)
        st.caption(f"Active reranker: **{escape_markdown(reranker or 'none')}**  \n"
                   f"Active answerer: **{escape_markdown(answerer or EXTRACTIVE)}**")
    documents = infos[collection].documents if collection in infos else 0
    return AnswerChoices(collection, int(top_k), reranker or "none", answerer or EXTRACTIVE, documents)


def _with_default(default: str, choices: tuple[str, ...]) -> list[str]:
    """The configured value first, then the usual choices."""
    return [default] + [c for c in choices if c != default]


def show_error(exc: BaseException) -> None:
    """A friendly message for an error, saying what to do next."""
    st.error(friendly_message(exc), icon=":material/error:")


def friendly_message(exc: BaseException) -> str:
    """The message a person sees for an error, with the next step."""
    text = escape_markdown(str(exc))
    if isinstance(exc, StoreBusyError):
        return (f"The document store is busy: {text}  \nClose the other program using it "
                "(a running `rag` command), then try again.")
    if isinstance(exc, CollectionNotFoundError):
        return f"{text}  \nPick another collection in the sidebar or create one on the Documents page."
    if isinstance(exc, ProviderError):
        return (f"The answer provider failed: {text}  \nCheck its API key and address, or choose the "
                "'extractive' answerer in the sidebar's Answer settings, then ask again.")
    if isinstance(exc, ConfigError):
        return f"A setting is not valid: {text}  \nFix it in the sidebar or in the RAG_* environment variables."
    if isinstance(exc, RagError):
        return text
    # An unexpected failure: the person gets a short message, the log gets the traceback.
    logger.error("unexpected error in the web app", exc_info=exc)
    return (f"Something went wrong ({escape_markdown(type(exc).__name__)}: {text}).  \n"
            "Try again; if it keeps happening, check the server log.")


def dataset_label(path: str) -> str:
    """A data set as a person knows it: its folder's name, not where it sits on this machine."""
    return Path(path).name or str(path)


def unique_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation runs without repeats (a run just made on the page is also in the store): one per id,
    latest first."""
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        seen.setdefault(str(run["id"]), run)
    return sorted(seen.values(), key=lambda r: float(r.get("created_at") or 0), reverse=True)


def run_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Runs table: one row per run, its date readable, its data set by name, then settings and metrics."""
    rows = []
    for run in unique_runs(runs):
        settings = run.get("settings") or {}
        row: dict[str, Any] = {
            "run": run["name"],
            "date": datetime.fromtimestamp(float(run["created_at"])).strftime("%Y-%m-%d %H:%M"),
            "data set": run["dataset"],
            "questions": run.get("questions_asked"),
            "seconds": run.get("seconds"),
        }
        row.update({f"settings.{k}": v for k, v in settings.items() if not isinstance(v, dict | list | tuple)})
        row.update({f"metrics.{k}": v for k, v in (run.get("metrics") or {}).items()})
        row.update({f"starter.{k}": v for k, v in (run.get("starter") or {}).items()})
        rows.append(row)
    return rows


def records(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows from dicts: nested dicts flattened into "a.b" columns, list values left out."""
    import pandas as pd

    if not items:
        return []
    flat = pd.json_normalize(list(items), sep=".")
    # Lists (per-question details, say) do not fit a cell: they are shown apart.
    keep = [c for c in flat.columns if not flat[c].map(lambda v: isinstance(v, list | tuple)).any()]
    return flat[keep].to_dict("records")
