"""Evaluation data sets: one folder with `documents/` to ingest and `questions.jsonl` to ask.

```
DATASET/
  documents/        the files to ingest (any supported type; subfolders allowed)
  questions.jsonl   one Question a line (see `Question`)
```
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import RagError

QUESTIONS_FILE = "questions.jsonl"
DOCUMENTS_DIR = "documents"
UNANSWERABLE_PREFIX = "neg-"
HARD_NEGATIVE_PREFIX = "hard-"
NEGATIVE_KINDS = ("foreign", "hard")
SPLITS = ("dev", "test")
SPLIT_SEED = "rag-eval-split-1"  # changing it reshuffles every split: tuned figures stop comparing


class DatasetError(RagError):
    """A data set folder or its questions file is missing or invalid."""


def _relative_document(path: str) -> str:
    """A gold document path as written in questions.jsonl: POSIX, relative to documents/."""
    cleaned = path.strip().replace("\\", "/")
    pure = PurePosixPath(cleaned)
    if not cleaned or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"document path must be relative to documents/ (got {path!r})")
    return str(pure)


class GoldPage(BaseModel):
    """A page (1-based) of a document that holds the answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document: str
    page: int = Field(ge=1)

    @field_validator("document")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _relative_document(value)

    @property
    def key(self) -> tuple[str, int]:
        """The (document, page) pair that page-level metrics compare."""
        return (self.document, self.page)


class Question(BaseModel):
    """One question with its gold labels; every label is optional except on `answerable`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str | None = None
    documents: list[str] | None = None
    pages: list[GoldPage] | None = None
    contexts: list[str] | None = None  # gold evidence text: the passage(s) that hold the answer
    # True when `answer` is copied verbatim from a gold document (SQuAD-style spans), so a chunk
    # containing it holds the passage; False for written answers (docugami, generated sets).
    answer_is_span: bool = False
    answerable: bool = True
    # Unanswerable questions only: "foreign" (borrowed from another data set) or "hard" (from this
    # set, asked with its gold documents filtered out). None: inferred, see `negative_kind`.
    negative: Literal["foreign", "hard"] | None = None
    # Documents (relative to documents/) left out of the search when this question is asked.
    exclude_documents: list[str] | None = None
    # Source-specific labels (question type, origin) kept for breakdowns; not part of the gold.
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("documents")
    @classmethod
    def _relative_documents(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        # Keep the first occurrence: duplicates would count twice in recall.
        return list(dict.fromkeys(_relative_document(v) for v in value))

    @field_validator("exclude_documents")
    @classmethod
    def _relative_excluded(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(_relative_document(v) for v in value))

    @model_validator(mode="after")
    def _consistent_gold(self) -> Question:
        if not self.answerable and (self.documents or self.pages):
            raise ValueError("an unanswerable question cannot have gold documents or pages")
        if self.answerable and self.negative:
            raise ValueError("an answerable question cannot be a negative: drop 'negative' or set answerable false")
        if self.pages and self.documents is None:
            # Gold pages imply their documents.
            self.documents = list(dict.fromkeys(p.document for p in self.pages))
        elif self.pages and self.documents is not None:
            missing = sorted({p.document for p in self.pages} - set(self.documents))
            if missing:
                raise ValueError(f"gold pages name documents not in 'documents': {missing}")
        return self

    @property
    def gold_documents(self) -> set[str]:
        """Gold document paths (relative to documents/); empty when unknown."""
        return set(self.documents or ())

    @property
    def gold_pages(self) -> set[tuple[str, int]]:
        """Gold (document, page) pairs; empty when unknown."""
        return {p.key for p in self.pages or ()}

    @property
    def negative_kind(self) -> str | None:
        """None for answerable questions; else "foreign" or "hard". Unlabelled unanswerable
        questions count as foreign when borrowed from another set (meta `source_dataset`), else
        as hard: a set's own unanswerable questions ask about its subject."""
        if self.answerable:
            return None
        if self.negative:
            return self.negative
        return "foreign" if self.meta.get("source_dataset") else "hard"

    @property
    def has_passage_gold(self) -> bool:
        """True when passage-level metrics apply: an answer span or evidence text."""
        return bool(self.answerable and ((self.answer_is_span and self.answer) or self.contexts))

    def to_json_line(self) -> str:
        """The question as one line of questions.jsonl (`meta` only when it holds something)."""
        data = self.model_dump(mode="json")
        for optional in ("meta", "negative", "exclude_documents", "answer_is_span"):
            if not data[optional]:  # left out when empty, so older files stay as they were
                del data[optional]
        return json.dumps(data, ensure_ascii=False)


class Dataset(BaseModel):
    """A data set folder and its questions, in file order."""

    model_config = ConfigDict(frozen=True)

    root: Path
    questions: list[Question]

    @property
    def name(self) -> str:
        """The folder name, used in reports."""
        return self.root.name

    @property
    def documents_dir(self) -> Path:
        """The folder whose files are ingested."""
        return self.root / DOCUMENTS_DIR

    def document_files(self) -> list[Path]:
        """Every file under documents/ (following symlinks), sorted by relative path."""
        if not self.documents_dir.is_dir():
            return []
        return sorted(
            (
                p
                for p in self.documents_dir.rglob("*")
                if p.is_file() and not p.name.startswith(".")
            ),
            key=lambda p: self.relative_document(p),
        )

    def relative_document(self, path: str | Path) -> str:
        """A file path as gold labels name it: POSIX, relative to documents/."""
        path = Path(path)
        if path.is_absolute():
            # Not resolved: documents may be symlinks into another folder.
            path = path.relative_to(self.documents_dir)
        return path.as_posix()

    def limit(self, n: int) -> Dataset:
        """The first `n` questions in file order, keeping a proportional share of unanswerable
        ones (at least one when there are any and n >= 2), still in file order."""
        if n <= 0:
            raise ValueError(f"limit must be > 0 (got {n})")
        if n >= len(self.questions):
            return self
        answerable = [q for q in self.questions if q.answerable]
        unanswerable = [q for q in self.questions if not q.answerable]
        n_unanswerable = round(n * len(unanswerable) / len(self.questions))
        if unanswerable and answerable and n >= 2:
            n_unanswerable = min(max(n_unanswerable, 1), n - 1)
        n_unanswerable = min(n_unanswerable, len(unanswerable))
        n_answerable = min(n - n_unanswerable, len(answerable))
        kept = {id(q) for q in answerable[:n_answerable] + unanswerable[:n_unanswerable]}
        return self.model_copy(update={"questions": [q for q in self.questions if id(q) in kept]})

    def split(self, name: str) -> Dataset:
        """The questions of one fixed half: "dev" for tuning, "test" for reporting, "all" for every one.

        A question's half depends on its id alone (a seeded hash), so the split holds across
        runs, machines, `--limit` and added questions. Tune on dev, report on test.
        """
        if name == "all":
            return self
        if name not in SPLITS:
            raise ValueError(f"split must be one of dev, test, all (got {name!r})")
        kept = [q for q in self.questions if question_split(q.id) == name]
        return self.model_copy(update={"questions": kept})

    def with_questions(self, questions: Sequence[Question]) -> Dataset:
        """The same documents with another list of questions (ids must stay unique)."""
        _check_unique_ids(questions)
        return self.model_copy(update={"questions": list(questions)})


def question_split(question_id: str) -> str:
    """ "dev" or "test": the half a question id falls in (a seeded sha256, even or odd)."""
    digest = hashlib.sha256(f"{SPLIT_SEED}:{question_id}".encode()).digest()
    return SPLITS[digest[0] & 1]


def _check_unique_ids(questions: Iterable[Question]) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise DatasetError(f"Duplicate question id {q.id!r}: give each question its own id.")
        seen.add(q.id)


def load_dataset(path: str | Path) -> Dataset:
    """Read a data set folder (or its questions.jsonl) and check every line against the format
    and every gold document against the files under documents/."""
    path = Path(path)
    root = path.parent if path.is_file() else path
    questions_file = root / QUESTIONS_FILE
    documents_dir = root / DOCUMENTS_DIR
    if not questions_file.is_file():
        raise DatasetError(
            f"No {QUESTIONS_FILE} in {root}: point at a data set folder, or create one with "
            "'rag eval convert KIND SRC OUT'."
        )
    if not documents_dir.is_dir():
        raise DatasetError(f"No {DOCUMENTS_DIR}/ folder in {root}: put the files to ingest there.")

    questions: list[Question] = []
    first_line: dict[str, int] = {}
    with questions_file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{questions_file}, line {number}"
            try:
                question = Question.model_validate_json(line)
            except ValidationError as exc:
                raise DatasetError(f"{where}: not a valid question: {_short(exc)}") from exc
            if question.id in first_line:
                raise DatasetError(
                    f"{where}: duplicate id {question.id!r} (first used on line "
                    f"{first_line[question.id]}): give each question its own id."
                )
            first_line[question.id] = number
            for document in sorted(question.gold_documents | set(question.exclude_documents or ())):
                if not (documents_dir / document).is_file():
                    raise DatasetError(
                        f"{where}: {'gold ' if document in question.gold_documents else ''}document {document!r} "
                        f"does not exist under {documents_dir}: "
                        "fix the path (relative to documents/) or add the file."
                    )
            questions.append(question)
    if not questions:
        raise DatasetError(f"{questions_file} holds no questions: add one JSON object a line.")
    return Dataset(root=root, questions=questions)


def _short(exc: ValidationError) -> str:
    """Pydantic's errors on one line: 'field: message; ...'."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"]) or "line"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def write_questions(path: str | Path, questions: Iterable[Question]) -> Path:
    """Write questions as JSON lines to `path` (a file, or a folder that gets questions.jsonl).
    Returns the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / QUESTIONS_FILE
    questions = list(questions)
    _check_unique_ids(questions)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for question in questions:
            out.write(question.to_json_line() + "\n")
    return path


def with_unanswerable(dataset: Dataset, other: Dataset, n: int) -> list[Question]:
    """`n` questions of `other` turned into unanswerable ones for `dataset` (no gold, ids
    prefixed 'neg-'), spread evenly over `other` so they do not all share one topic."""
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    asked = {q.question.strip().lower() for q in dataset.questions}
    pool = [q for q in other.questions if q.answerable and q.question.strip().lower() not in asked]
    n = min(n, len(pool))
    if n == 0:
        return []
    # Evenly spaced picks: deterministic, and across the whole of the other set.
    picks = [pool[i * len(pool) // n] for i in range(n)]
    taken = {q.id for q in dataset.questions}
    negatives = []
    for q in picks:
        new_id = f"{UNANSWERABLE_PREFIX}{q.id}"
        if new_id in taken:
            raise DatasetError(
                f"Question id {new_id!r} already exists in {dataset.name}: "
                "rename it before adding unanswerable questions."
            )
        negatives.append(
            Question(
                id=new_id,
                question=q.question,
                answerable=False,
                negative="foreign",
                meta={"source_dataset": other.name, "source_id": q.id},
            )
        )
    return negatives


def with_hard_negatives(dataset: Dataset, n: int) -> list[Question]:
    """`n` of the data set's own answerable questions turned into hard negatives: asked again
    with their gold documents filtered out of the search (`exclude_documents`), so the collection
    still holds similar documents but not the answer. Ids are prefixed 'hard-'; picks are spread
    evenly over the questions that have gold documents."""
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    pool = [q for q in dataset.questions if q.answerable and q.gold_documents]
    n = min(n, len(pool))
    if n == 0:
        return []
    picks = [pool[i * len(pool) // n] for i in range(n)]
    taken = {q.id for q in dataset.questions}
    negatives = []
    for q in picks:
        new_id = f"{HARD_NEGATIVE_PREFIX}{q.id}"
        if new_id in taken:
            raise DatasetError(
                f"Question id {new_id!r} already exists in {dataset.name}: rename it before adding hard negatives."
            )
        negatives.append(
            Question(
                id=new_id,
                question=q.question,
                answerable=False,
                negative="hard",
                exclude_documents=sorted(q.gold_documents),
                meta={"source_id": q.id},
            )
        )
    return negatives
