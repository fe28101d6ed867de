"""Converters from published question-answering sets to the evaluation data set format.

Each `convert_*(src, out)` writes `out/documents/` (symlinks to the source files where the
source holds files, text files where it holds text) and `out/questions.jsonl`, then loads the
result with `load_dataset` so a bad conversion fails here, not in the middle of a run.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evaluation.datasets import (
    DOCUMENTS_DIR,
    QUESTIONS_FILE,
    Dataset,
    DatasetError,
    GoldPage,
    Question,
    load_dataset,
    write_questions,
)

# ---------------------------------------------------------------- output folder


def _prepare_output(out: Path, overwrite: bool) -> Path:
    """An empty documents/ folder under `out`; refuses to mix with an earlier conversion."""
    documents = out / DOCUMENTS_DIR
    if (out / QUESTIONS_FILE).exists() or (documents.exists() and any(documents.iterdir())):
        if not overwrite:
            raise DatasetError(
                f"{out} already holds a data set: choose another output folder or pass overwrite."
            )
        (out / QUESTIONS_FILE).unlink(missing_ok=True)
        # rmtree removes symlinks themselves, never the files they point at.
        shutil.rmtree(documents, ignore_errors=True)
    documents.mkdir(parents=True, exist_ok=True)
    return documents


def _link_or_copy(source: Path, target: Path) -> None:
    """A symlink to the source file (cheap, keeps read-only sources untouched), or a copy where
    the file system refuses symlinks."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(source.resolve(), target)
    except OSError:
        shutil.copy2(source, target)


def _finish(out: Path, questions: list[Question]) -> Dataset:
    write_questions(out / QUESTIONS_FILE, questions)
    return load_dataset(out)


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _file_stem(identifier: str) -> str:
    """A file name from a source id: unsafe characters replaced, a short hash added when the
    name had to change (so two ids never map to one file)."""
    stem = _UNSAFE_NAME.sub("_", identifier).strip("._") or "doc"
    if stem != identifier:
        stem += "-" + hashlib.sha1(identifier.encode()).hexdigest()[:8]
    return stem


# ---------------------------------------------------------------- Docugami SEC 10-Q


def _find_docugami_csv(src: Path) -> Path:
    candidates = [src, src / "qna_data.csv", src / "data" / "v1" / "qna_data.csv"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"No qna_data.csv found at {src}: point at the docugami folder, its data/v1 folder, "
        "or the CSV itself."
    )


def _source_globs(cell: str) -> list[str]:
    """The glob patterns of a 'Source Docs' cell: several may be separated by commas,
    semicolons or line breaks (names themselves hold spaces)."""
    return [part.strip() for part in re.split(r"[,;\n]", cell) if part.strip()]


def convert_docugami(src: str | Path, out: str | Path, overwrite: bool = False) -> Dataset:
    """Docugami KG-RAG SEC 10-Q: `qna_data.csv` (Question, Answer, Source Docs globs, Question
    Type, Source Chunk Type) with the filings in `docs/` beside it. Gold documents are the files
    matching the glob(s); there is no page gold."""
    src, out = Path(src), Path(out)
    csv_path = _find_docugami_csv(src)
    docs_dir = csv_path.parent / "docs"
    if not docs_dir.is_dir():
        raise DatasetError(f"No docs/ folder beside {csv_path}: the filings belong there.")
    files = sorted(p for p in docs_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DatasetError(f"{docs_dir} holds no documents.")

    documents = _prepare_output(out, overwrite)
    for path in files:
        _link_or_copy(path, documents / path.name)

    questions = []
    # utf-8-sig: the published CSV starts with a byte-order mark.
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=1):
            globs = _source_globs(row.get("Source Docs") or "")
            # Case-insensitive: the globs were typed by hand.
            gold = [
                p.name
                for p in files
                if any(fnmatch.fnmatchcase(p.name.lower(), g.lower()) for g in globs)
            ]
            if not gold:
                raise DatasetError(
                    f"{csv_path}, row {number}: 'Source Docs' {row.get('Source Docs')!r} matches "
                    f"no file in {docs_dir}: fix the glob or add the file."
                )
            meta = {
                key: row[column]
                for key, column in (
                    ("question_type", "Question Type"),
                    ("chunk_type", "Source Chunk Type"),
                )
                if row.get(column)
            }
            questions.append(
                Question(
                    id=f"docugami-{number:03d}",
                    question=row["Question"].strip(),
                    answer=(row.get("Answer") or "").strip() or None,
                    documents=gold,
                    meta=meta,
                )
            )
    return _finish(out, questions)


# ---------------------------------------------------------------- COVID-QA / SQuAD


@lru_cache(maxsize=1)
def _sentence_tokenizer() -> Any:
    # Untrained Punkt, as llama-index's sentence splitter uses: needs no data download.
    from nltk.tokenize import PunktSentenceTokenizer

    return PunktSentenceTokenizer()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`: line breaks always end a sentence, Punkt
    splits within a line, and a piece that starts in lower case or with a digit or closing
    bracket is joined to the one before (Punkt splits after 'et al.' or 'Fig.')."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        pieces: list[tuple[int, int]] = []
        for start, end in _sentence_tokenizer().span_tokenize(line.group()):
            start, end = start + line.start(), end + line.start()
            first = text[start]
            if pieces and (first.islower() or first.isdigit() or first in ")]},;:"):
                pieces[-1] = (pieces[-1][0], end)
            else:
                pieces.append((start, end))
        spans.extend(pieces)
    return spans


def sentences_around(
    text: str, start: int, end: int, spans: list[tuple[int, int]] | None = None
) -> str:
    """The text from the start of the sentence holding `start` to the end of the sentence
    holding the last character before `end`."""
    spans = spans if spans is not None else sentence_spans(text)
    # Ignore the span's own leading/trailing whitespace: it may run into the next sentence.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    covering = [(s, e) for s, e in spans if s < max(end, start + 1) and e > start]
    if not covering:
        return text[start:end]
    return text[min(s for s, _ in covering) : max(e for _, e in covering)]


def _locate_answer(context: str, text: str, start: int) -> int | None:
    """The answer's offset: the given one when the text is there, else the occurrence nearest
    to it (COVID-QA's offsets are off by a few characters in 234 of its 1,380 answers)."""
    if context[start : start + len(text)] == text:
        return start
    found = [m.start() for m in re.finditer(re.escape(text), context)]
    return min(found, key=lambda i: abs(i - start)) if found else None


@dataclass
class _SquadDocument:
    """The paragraphs of one article joined into one text, with each paragraph's offset."""

    name: str
    text: str = ""
    spans: list[tuple[int, int]] = field(default_factory=list)

    def add(self, context: str) -> int:
        offset = len(self.text) + (2 if self.text else 0)
        self.text = f"{self.text}\n\n{context}" if self.text else context
        return offset


def convert_covidqa(src: str | Path, out: str | Path, overwrite: bool = False) -> Dataset:
    """COVID-QA or any SQuAD-format JSON: each article (its `document_id`, else its title)
    becomes documents/<id>.txt holding its context; each question's gold is that file, page 1,
    the first answer's text (marked as a span of the document: passage-level gold), and as
    evidence text (`contexts`) the sentence(s) around the answer span."""
    src, out = Path(src), Path(out)
    json_path = src
    if src.is_dir():
        found = sorted(src.glob("*.json"))
        if len(found) != 1:
            raise DatasetError(
                f"Expected one SQuAD JSON file in {src}, found {len(found)}: name it."
            )
        json_path = found[0]
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{json_path} is not a SQuAD-format JSON file ({exc}).") from exc

    docs: dict[str, _SquadDocument] = {}
    pending: list[tuple[dict[str, Any], _SquadDocument, int, str]] = []
    for a, article in enumerate(data):
        for paragraph in article.get("paragraphs", []):
            key = paragraph.get("document_id", article.get("document_id", article.get("title", a)))
            doc = docs.setdefault(str(key), _SquadDocument(name=f"{_file_stem(str(key))}.txt"))
            offset = doc.add(paragraph["context"])
            for qa in paragraph.get("qas", []):
                pending.append((qa, doc, offset, paragraph["context"]))

    documents = _prepare_output(out, overwrite)
    for doc in docs.values():
        (documents / doc.name).write_text(doc.text, encoding="utf-8")
        doc.spans = sentence_spans(doc.text)

    questions = []
    for qa, doc, offset, context in pending:
        answers = qa.get("answers") or []
        if qa.get("is_impossible") or not answers:
            # SQuAD 2.0 unanswerable: the document does not hold the answer.
            questions.append(
                Question(id=f"covidqa-{qa['id']}", question=qa["question"], answerable=False)
            )
            continue
        first = answers[0]
        start = _locate_answer(context, first["text"], int(first.get("answer_start", 0)))
        contexts = None
        if start is not None:
            begin = offset + start
            contexts = [sentences_around(doc.text, begin, begin + len(first["text"]), doc.spans)]
        questions.append(
            Question(
                id=f"covidqa-{qa['id']}",
                question=qa["question"].strip(),
                answer=first["text"].strip(),
                answer_is_span=True,
                documents=[doc.name],
                pages=[GoldPage(document=doc.name, page=1)],
                contexts=contexts,
            )
        )
    return _finish(out, questions)


# ---------------------------------------------------------------- LlamaIndex labelled RAG sets


def _normalised(text: str) -> str:
    """Lower case with whitespace runs collapsed: PDF extractors differ mostly in spacing."""
    return " ".join(text.lower().split())


def _page_texts(path: Path) -> list[str]:
    """The text of each page of a file as ingestion reads it, so gold pages match the pages
    that retrieval returns; unsupported types are read as plain text, unreadable files as none."""
    from core.errors import ReaderError
    from ingest.readers import SUPPORTED_EXTENSIONS, read_document

    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        return [path.read_text(encoding="utf-8", errors="replace")]
    try:
        return [page.text for page in read_document(path).pages]
    except ReaderError:
        return []


@dataclass
class _SourceText:
    """A source file's normalised text, with the offset where each page starts."""

    relative: str
    text: str
    page_starts: list[int]

    @classmethod
    def read(cls, path: Path, relative: str) -> _SourceText:
        starts, parts, length = [], [], 0
        for page in _page_texts(path):
            starts.append(length)
            normal = _normalised(page)
            parts.append(normal)
            length += len(normal) + 1
        return cls(relative, " ".join(parts), starts)

    def page_at(self, offset: int) -> int:
        return sum(1 for s in self.page_starts if s <= offset)


def _find_context(context: str, sources: list[_SourceText]) -> list[tuple[str, int]]:
    """(document, page) where a reference context is found: the whole normalised text, else
    any of three 60-character probes (start, middle, end) to survive extraction differences."""
    needle = _normalised(context)
    if not needle:
        return []
    probes = [needle]
    if len(needle) > 120:
        middle = len(needle) // 2
        probes += [needle[:60], needle[middle - 30 : middle + 30], needle[-60:]]
    for probe in probes:
        hits = [(s.relative, s.page_at(s.text.find(probe))) for s in sources if probe in s.text]
        if hits:
            return hits
    return []


def convert_llamaindex(src: str | Path, out: str | Path, overwrite: bool = False) -> Dataset:
    """A LlamaIndex labelled RAG data set: `rag_dataset.json` ({"examples": [{query,
    reference_contexts, reference_answer, ...}]}) and `source_files/`. Gold documents and pages
    are where each reference context is found in the source files' text; a question whose
    contexts are found nowhere keeps its answer and contexts but no gold documents."""
    src, out = Path(src), Path(out)
    dataset_file = src / "rag_dataset.json" if src.is_dir() else src
    source_dir = dataset_file.parent / "source_files"
    if not dataset_file.is_file():
        raise DatasetError(
            f"No rag_dataset.json in {src}: point at the downloaded data set folder."
        )
    if not source_dir.is_dir():
        raise DatasetError(f"No source_files/ folder beside {dataset_file}.")
    try:
        examples = json.loads(dataset_file.read_text(encoding="utf-8"))["examples"]
    except (ValueError, KeyError) as exc:
        raise DatasetError(f"{dataset_file} is not a LlamaIndex rag_dataset.json ({exc}).") from exc

    documents = _prepare_output(out, overwrite)
    sources = []
    for path in sorted(
        p for p in source_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
    ):
        relative = path.relative_to(source_dir).as_posix()
        _link_or_copy(path, documents / relative)
        sources.append(_SourceText.read(path, relative))

    questions = []
    for number, example in enumerate(examples, start=1):
        contexts = [c for c in example.get("reference_contexts") or [] if c and c.strip()]
        found = [hit for c in contexts for hit in _find_context(c, sources)]
        pages = list(dict.fromkeys(found))
        questions.append(
            Question(
                id=f"llamaindex-{number:04d}",
                question=example["query"].strip(),
                answer=(example.get("reference_answer") or "").strip() or None,
                documents=list(dict.fromkeys(d for d, _ in pages)) or None,
                pages=[GoldPage(document=d, page=p) for d, p in pages] or None,
                contexts=contexts or None,
            )
        )
    return _finish(out, questions)


# ---------------------------------------------------------------- BEIR


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise DatasetError(f"{path}, line {number}: invalid JSON ({exc}).") from exc


def _qrels(path: Path) -> dict[str, list[str]]:
    """query id -> corpus ids with a score above 0, in file order (a header line is skipped)."""
    relevant: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not line.strip():
                continue
            try:
                score = float(parts[-1])
            except ValueError:
                if number == 1:
                    continue  # the "query-id corpus-id score" header
                raise DatasetError(
                    f"{path}, line {number}: score {parts[-1]!r} is not a number."
                ) from None
            if score > 0:
                relevant.setdefault(parts[0], []).append(parts[1])
    return relevant


def convert_beir(
    src: str | Path, out: str | Path, split: str = "test", overwrite: bool = False
) -> Dataset:
    """A BEIR folder (`corpus.jsonl` {_id, title, text}, `queries.jsonl` {_id, text},
    `qrels/<split>.tsv` query-id corpus-id score): each corpus document becomes
    documents/<_id>.txt (title, blank line, text); the questions are the queries of the split
    with their corpus documents of score > 0 as gold. BEIR has no reference answers."""
    src, out = Path(src), Path(out)
    corpus, queries, qrels = (
        src / "corpus.jsonl",
        src / "queries.jsonl",
        src / "qrels" / f"{split}.tsv",
    )
    for required in (corpus, queries, qrels):
        if not required.is_file():
            raise DatasetError(
                f"No {required.relative_to(src)} in {src}: is it a BEIR data set folder?"
            )
    relevant = _qrels(qrels)

    documents = _prepare_output(out, overwrite)
    names: dict[str, str] = {}
    for doc in _jsonl(corpus):
        name = f"{_file_stem(str(doc['_id']))}.txt"
        names[str(doc["_id"])] = name
        title, text = (doc.get("title") or "").strip(), doc.get("text") or ""
        (documents / name).write_text(f"{title}\n\n{text}" if title else text, encoding="utf-8")

    questions = []
    for query in _jsonl(queries):
        gold = [names[c] for c in relevant.get(str(query["_id"]), []) if c in names]
        if gold:
            questions.append(Question(id=str(query["_id"]), question=query["text"], documents=gold))
    if not questions:
        raise DatasetError(f"No query in {queries} has a relevant document in {qrels}.")
    return _finish(out, questions)


CONVERTERS: dict[str, Callable[..., Dataset]] = {
    "docugami": convert_docugami,
    "covidqa": convert_covidqa,
    "llamaindex": convert_llamaindex,
    "beir": convert_beir,
}


def convert(kind: str, src: str | Path, out: str | Path, overwrite: bool = False) -> Dataset:
    """Run the converter named `kind` (one of CONVERTERS) from `src` into `out`."""
    try:
        converter = CONVERTERS[kind.lower()]
    except KeyError:
        raise DatasetError(
            f"Unknown data set kind {kind!r}: use one of {', '.join(CONVERTERS)}."
        ) from None
    return converter(src, out, overwrite=overwrite)
