"""Conversations kept in SQLite under RAG_HOME: each belongs to one collection, is titled by its first
question (renamable), and holds its turns (question, answer with citations, or the error shown).

The chat page lists, reopens, renames, deletes and exports them; a turn is stored as JSON of the
answer and its trace, so a reopened conversation shows what it showed when it was asked.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.trace import Trace
from core.types import Answer, Citation, Usage

TITLE_CHARS = 80

# Numbered schema migrations: the database's user_version says how many have run.
MIGRATIONS = (
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX conversations_collection ON conversations(collection, updated_at)",
    """CREATE TABLE turns (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        created_at REAL NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (conversation_id, position)
    )""",
)


@dataclass(frozen=True)
class Conversation:
    """One saved conversation as the sidebar lists it."""

    id: str
    collection: str
    title: str
    created_at: float
    updated_at: float
    turns: int = 0

    @property
    def when(self) -> str:
        """Its last change as a local date and time, "2026-11-29 18:10"."""
        return datetime.fromtimestamp(self.updated_at).strftime("%Y-%m-%d %H:%M")


def title_of(question: str) -> str:
    """A conversation's title from its first question: one line, at most TITLE_CHARS characters."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class ConversationStore:
    """Saves conversations and their turns; safe to share between the app's sessions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._db() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, statement in enumerate(MIGRATIONS[version:], start=version + 1):
                db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            with db:
                yield db
        finally:
            db.close()

    def create(self, collection: str, title: str = "") -> Conversation:
        """A new, empty conversation on `collection`."""
        now = time.time()
        conversation = Conversation(uuid.uuid4().hex[:16], collection, title_of(title), now, now)
        with self._lock, self._db() as db:
            db.execute("INSERT INTO conversations VALUES (?,?,?,?,?)",
                       (conversation.id, collection, conversation.title, now, now))
        return conversation

    def list(self, collection: str | None = None) -> list[Conversation]:
        """Conversations, most recently changed first; only those of `collection` when given."""
        query = ("SELECT c.id, c.collection, c.title, c.created_at, c.updated_at, COUNT(t.position) "
                 "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id")
        args: tuple[Any, ...] = ()
        if collection is not None:
            query += " WHERE c.collection = ?"
            args = (collection,)
        query += " GROUP BY c.id ORDER BY c.updated_at DESC, c.created_at DESC"
        with self._lock, self._db() as db:
            return [Conversation(*row) for row in db.execute(query, args)]

    def get(self, conversation_id: str) -> Conversation | None:
        """One conversation, or None when there is none with that id."""
        with self._lock, self._db() as db:
            row = db.execute(
                "SELECT c.id, c.collection, c.title, c.created_at, c.updated_at, COUNT(t.position) "
                "FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.id = ? GROUP BY c.id",
                (conversation_id,)).fetchone()
        return Conversation(*row) if row else None

    def rename(self, conversation_id: str, title: str) -> bool:
        """Give a conversation a new title (blank keeps the old one); False when it is gone."""
        title = title_of(title)
        if not title:
            return self.get(conversation_id) is not None
        with self._lock, self._db() as db:
            return db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                              (title, conversation_id)).rowcount == 1

    def delete(self, conversation_id: str) -> bool:
        """Delete a conversation and its turns; False when it was already gone."""
        with self._lock, self._db() as db:
            return db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount == 1

    def add_turn(self, conversation_id: str, turn: dict[str, Any]) -> int:
        """Append a turn (the chat page's dict: question, answer, trace, error, ...); returns its position.
        The first question becomes the title of an untitled conversation."""
        body = json.dumps(turn_to_record(turn), default=str)
        now = time.time()
        with self._lock, self._db() as db:
            position = db.execute("SELECT COUNT(*) FROM turns WHERE conversation_id = ?",
                                  (conversation_id,)).fetchone()[0]
            db.execute("INSERT INTO turns VALUES (?,?,?,?)", (conversation_id, position, now, body))
            db.execute("UPDATE conversations SET updated_at = ?, "
                       "title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                       (now, title_of(str(turn.get("question", ""))), conversation_id))
        return position

    def update_turn(self, conversation_id: str, position: int, turn: dict[str, Any]) -> bool:
        """Store a changed turn (its feedback, say) in place."""
        body = json.dumps(turn_to_record(turn), default=str)
        with self._lock, self._db() as db:
            return db.execute("UPDATE turns SET body = ? WHERE conversation_id = ? AND position = ?",
                              (body, conversation_id, position)).rowcount == 1

    def turns(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's turns, oldest first, as the chat page keeps them (Answer and Trace objects)."""
        with self._lock, self._db() as db:
            rows = db.execute("SELECT position, body FROM turns WHERE conversation_id = ? ORDER BY position",
                              (conversation_id,)).fetchall()
        return [{**turn_from_record(json.loads(body)), "position": position} for position, body in rows]

    def export_markdown(self, conversation_id: str) -> str:
        """The conversation as Markdown: each question, its answer, and every citation with its
        document, page and the quoted passage."""
        conversation = self.get(conversation_id)
        if conversation is None:
            raise KeyError(conversation_id)
        return conversation_markdown(conversation, self.turns(conversation_id))


def conversation_markdown(conversation: Conversation, turns: list[dict[str, Any]]) -> str:
    """Markdown of a conversation's turns (see ConversationStore.export_markdown)."""
    started = datetime.fromtimestamp(conversation.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {conversation.title or 'Conversation'}", "",
             f"Collection: {conversation.collection} · started {started}", ""]
    for number, turn in enumerate(turns, start=1):
        lines += [f"## Question {number}", "", _quoted_lines(str(turn.get("question", ""))), ""]
        answer: Answer | None = turn.get("answer")
        if turn.get("error"):
            lines += ["### Error", "", str(turn["error"]), ""]
            continue
        if answer is None:
            continue
        lines += ["### Answer", "", answer.text.strip() or "(no answer)", ""]
        if answer.abstained:
            lines += ["_Not found in your documents; the closest passages follow._", ""]
        if answer.citations:
            lines += ["### Sources", ""]
        for citation in answer.citations:
            lines.append(f"**[{citation.n}] {citation.document}, page {citation.page}**")
            lines.append("")
            lines.append(_quoted_lines(citation.text))
            if citation.supporting_sentence:
                lines += ["", f"Supporting sentence: “{' '.join(citation.supporting_sentence.split())}”"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _quoted_lines(text: str) -> str:
    """Text as a Markdown block quote, one "> " per line."""
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines()) or ">"


# Turns as JSON: the Answer and Trace dataclasses, only the fields a reopened conversation shows.
_TRACE_SKIPPED = ("query_vector", "scores", "search_scores")


def turn_to_record(turn: dict[str, Any]) -> dict[str, Any]:
    """A chat turn as plain JSON data."""
    record = {k: v for k, v in turn.items() if k not in ("answer", "trace")}
    answer = turn.get("answer")
    record["answer"] = dataclasses.asdict(answer) if isinstance(answer, Answer) else None
    trace = turn.get("trace")
    record["trace"] = ({k: v for k, v in dataclasses.asdict(trace).items() if k not in _TRACE_SKIPPED}
                       if isinstance(trace, Trace) else None)
    return record


def turn_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """A chat turn back from its JSON data (fields that no longer exist are dropped)."""
    turn = dict(record)
    if record.get("answer"):
        data = _known(Answer, record["answer"])
        data["citations"] = [Citation(**_known(Citation, c)) for c in data.get("citations", [])]
        data["usage"] = Usage(**_known(Usage, data.get("usage") or {}))
        turn["answer"] = Answer(**data)
    if record.get("trace"):
        data = _known(Trace, record["trace"])
        if data.get("weights") is not None:
            data["weights"] = tuple(data["weights"])
        turn["trace"] = Trace(**data)
    return turn


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    return {k: v for k, v in data.items() if k in names}
