"""Data set format, loader, limits, unanswerable questions and the converters."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evaluation.converters import (
    convert,
    convert_beir,
    convert_covidqa,
    convert_docugami,
    convert_llamaindex,
    sentences_around,
)
from evaluation.datasets import (
    Dataset,
    DatasetError,
    GoldPage,
    Question,
    load_dataset,
    with_unanswerable,
    write_questions,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_dataset(
    root: Path, questions: list[Question], files: dict[str, str] | None = None
) -> Path:
    """A data set folder with the given document files (relative path -> text)."""
    for name, text in (files or {"a.txt": "alpha", "sub/b.md": "beta"}).items():
        (root / "documents" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "documents" / name).write_text(text)
    write_questions(root, questions)
    return root


def write_lines(root: Path, lines: list[str]) -> None:
    (root / "documents").mkdir(parents=True, exist_ok=True)
    (root / "documents" / "a.txt").write_text("alpha")
    (root / "questions.jsonl").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- format and loader


@pytest.mark.unit
def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    questions = [
        Question(
            id="q1",
            question="What is alpha?",
            answer="alpha",
            pages=[GoldPage(document="sub/b.md", page=1)],
            contexts=["alpha is first"],
            meta={"type": "lookup"},
        ),
        Question(id="q2", question="Unknown?", answerable=False),
    ]
    dataset = load_dataset(make_dataset(tmp_path / "set", questions))
    assert dataset.questions == questions
    assert dataset.questions[0].documents == ["sub/b.md"]  # implied by the gold pages
    assert dataset.questions[0].gold_pages == {("sub/b.md", 1)}
    assert dataset.documents_dir == tmp_path / "set" / "documents"
    assert [dataset.relative_document(p) for p in dataset.document_files()] == ["a.txt", "sub/b.md"]
    # meta is written only when it holds something
    lines = (tmp_path / "set" / "questions.jsonl").read_text().splitlines()
    assert "meta" in json.loads(lines[0]) and "meta" not in json.loads(lines[1])


@pytest.mark.unit
def test_defaults_answerable_and_null_gold(tmp_path: Path) -> None:
    write_lines(tmp_path, ['{"id": "q", "question": "Why?"}'])
    question = load_dataset(tmp_path / "questions.jsonl").questions[0]
    assert question.answerable is True
    assert question.documents is None and question.gold_documents == set()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"id": "q1", "question": "a"}', "{not json"], "line 2"),
        (
            ['{"id": "q1", "question": "a"}', '{"id": "q2"}'],
            "line 2: not a valid question: question",
        ),
        (
            ['{"id": "q1", "question": "a"}', "", '{"id": "q1", "question": "b"}'],
            "line 3: duplicate id 'q1' (first used on line 1)",
        ),
        (
            ['{"id": "q1", "question": "a", "documents": ["missing.pdf"]}'],
            "line 1: gold document 'missing.pdf' does not exist",
        ),
        (
            ['{"id": "q1", "question": "a", "pages": [{"document": "gone.txt", "page": 2}]}'],
            "gold document 'gone.txt'",
        ),
        (['{"id": "q1", "question": "a", "documents": ["../a.txt"]}'], "relative to documents/"),
        (['{"id": "q1", "question": "a", "pages": [{"document": "a.txt", "page": 0}]}'], "line 1"),
        (
            ['{"id": "q1", "question": "a", "answerable": false, "documents": ["a.txt"]}'],
            "unanswerable",
        ),
        (['{"id": "q1", "question": "a", "extra": 1}'], "extra"),
    ],
)
def test_invalid_lines_name_the_line(tmp_path: Path, lines: list[str], expected: str) -> None:
    write_lines(tmp_path, lines)
    with pytest.raises(DatasetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(tmp_path)


@pytest.mark.unit
def test_missing_parts_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="rag eval convert"):
        load_dataset(tmp_path)
    (tmp_path / "questions.jsonl").write_text('{"id": "q", "question": "a"}\n')
    with pytest.raises(DatasetError, match="No documents/ folder"):
        load_dataset(tmp_path)
    (tmp_path / "documents").mkdir()
    (tmp_path / "questions.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="no questions"):
        load_dataset(tmp_path)


@pytest.mark.unit
def test_pages_must_belong_to_listed_documents() -> None:
    with pytest.raises(ValueError, match="not in 'documents'"):
        Question(
            id="q", question="a", documents=["a.txt"], pages=[GoldPage(document="b.txt", page=1)]
        )


@pytest.mark.unit
def test_write_questions_rejects_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Duplicate question id 'x'"):
        write_questions(
            tmp_path / "q.jsonl", [Question(id="x", question="a"), Question(id="x", question="b")]
        )


# ---------------------------------------------------------------- limit and unanswerable


def _dataset(n_answerable: int, n_unanswerable: int, root: Path = Path("/nowhere")) -> Dataset:
    questions = [Question(id=f"a{i}", question=f"answerable {i}") for i in range(n_answerable)]
    # Unanswerable ones last, so taking the first n alone would drop them.
    questions += [
        Question(id=f"u{i}", question=f"unanswerable {i}", answerable=False)
        for i in range(n_unanswerable)
    ]
    return Dataset(root=root, questions=questions)


@pytest.mark.unit
def test_limit_takes_first_n_in_file_order() -> None:
    dataset = _dataset(10, 0)
    assert [q.id for q in dataset.limit(3).questions] == ["a0", "a1", "a2"]
    assert dataset.limit(50) is dataset
    with pytest.raises(ValueError):
        dataset.limit(0)


@pytest.mark.unit
def test_split_halves_are_disjoint_stable_and_follow_the_id() -> None:
    dataset = _dataset(200, 0)
    dev, test = dataset.split("dev"), dataset.split("test")
    dev_ids, test_ids = {q.id for q in dev.questions}, {q.id for q in test.questions}
    assert not dev_ids & test_ids and dev_ids | test_ids == {q.id for q in dataset.questions}
    assert 70 <= len(dev_ids) <= 130  # about half each
    # The half depends on the id alone: a reordered or shortened set keeps every question's half.
    shuffled = dataset.with_questions(list(reversed(dataset.questions[50:])))
    assert {q.id for q in shuffled.split("dev").questions} == dev_ids - {q.id for q in dataset.questions[:50]}
    assert dataset.split("all") is dataset
    with pytest.raises(ValueError, match="dev, test, all"):
        dataset.split("train")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("n_answerable", "n_unanswerable", "n"), [(80, 20, 10), (90, 10, 5), (5, 5, 4), (30, 1, 2)]
)
def test_limit_keeps_a_proportional_share_of_unanswerable(
    n_answerable: int, n_unanswerable: int, n: int
) -> None:
    dataset = _dataset(n_answerable, n_unanswerable)
    limited = dataset.limit(n)
    kept_unanswerable = [q for q in limited.questions if not q.answerable]
    expected = max(1, round(n * n_unanswerable / (n_answerable + n_unanswerable)))
    assert len(limited.questions) == n
    assert len(kept_unanswerable) == expected
    # Still in file order, and the same call gives the same questions.
    positions = [dataset.questions.index(q) for q in limited.questions]
    assert positions == sorted(positions)
    assert limited.questions == dataset.limit(n).questions


@pytest.mark.unit
def test_with_unanswerable_turns_other_questions_into_negatives() -> None:
    dataset = _dataset(3, 0)
    other = Dataset(
        root=Path("/other"),
        questions=[
            Question(id=f"o{i}", question=f"other {i}", answer="x", documents=None, contexts=["c"])
            for i in range(10)
        ],
    )
    negatives = with_unanswerable(dataset, other, 4)
    assert [q.id for q in negatives] == ["neg-o0", "neg-o2", "neg-o5", "neg-o7"]
    assert all(
        not q.answerable and q.answer is None and q.documents is None and q.pages is None
        for q in negatives
    )
    assert all(q.contexts is None for q in negatives)
    combined = dataset.with_questions(dataset.questions + negatives)
    assert len(combined.questions) == 7
    assert len(with_unanswerable(dataset, other, 50)) == 10


@pytest.mark.unit
def test_with_unanswerable_skips_questions_already_asked() -> None:
    dataset = Dataset(root=Path("/d"), questions=[Question(id="a", question="Same question?")])
    other = Dataset(
        root=Path("/o"),
        questions=[Question(id="b", question="same question?"), Question(id="c", question="new")],
    )
    assert [q.id for q in with_unanswerable(dataset, other, 2)] == ["neg-c"]


# ---------------------------------------------------------------- converters on small samples


@pytest.mark.unit
def test_convert_docugami_sample(tmp_path: Path) -> None:
    src = tmp_path / "docugami" / "data" / "v1"
    (src / "docs").mkdir(parents=True)
    for name in ["2023 Q1 AAPL.pdf", "2023 Q3 AAPL.pdf", "2023 Q3 MSFT.pdf"]:
        (src / "docs" / name).write_bytes(b"%PDF-1.4 fake")
    (src / "qna_data.csv").write_text(
        "\ufeffQuestion,Source Docs,Question Type,Source Chunk Type,Answer\n"
        'How did sales change?,*AAPL*,Multi-Doc RAG,Table,"Up,\nthen down"\n'
        "Latest MSFT revenue?,*2023 Q3 msft*,Single-Doc Single-Chunk RAG,Text,$56 billion\n"
        'Compare both?,"*2023 Q1 AAPL*, *MSFT*",Multi-Doc RAG,Text,Both grew\n',
        encoding="utf-8",
    )
    dataset = convert_docugami(tmp_path / "docugami", tmp_path / "out")
    assert [q.documents for q in dataset.questions] == [
        ["2023 Q1 AAPL.pdf", "2023 Q3 AAPL.pdf"],
        ["2023 Q3 MSFT.pdf"],
        ["2023 Q1 AAPL.pdf", "2023 Q3 MSFT.pdf"],
    ]
    assert dataset.questions[0].answer == "Up,\nthen down"
    assert dataset.questions[1].meta == {
        "question_type": "Single-Doc Single-Chunk RAG",
        "chunk_type": "Text",
    }
    assert all(q.pages is None for q in dataset.questions)
    assert len(dataset.document_files()) == 3
    assert (dataset.documents_dir / "2023 Q1 AAPL.pdf").read_bytes() == b"%PDF-1.4 fake"
    # A second conversion into the same folder needs overwrite.
    with pytest.raises(DatasetError, match="already holds a data set"):
        convert("docugami", tmp_path / "docugami", tmp_path / "out")
    assert (
        len(convert("docugami", tmp_path / "docugami", tmp_path / "out", overwrite=True).questions)
        == 3
    )


@pytest.mark.unit
def test_convert_docugami_glob_without_match_names_the_row(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "2023 Q3 AAPL.pdf").write_bytes(b"%PDF")
    (tmp_path / "qna_data.csv").write_text(
        "Question,Source Docs,Answer\nQ?,*AAPL*,A\nR?,*NVDA*,B\n"
    )
    with pytest.raises(DatasetError, match="row 2: 'Source Docs' '\\*NVDA\\*' matches no file"):
        convert_docugami(tmp_path / "qna_data.csv", tmp_path / "out")


@pytest.mark.unit
def test_convert_squad_sample(tmp_path: Path) -> None:
    context_1 = "Title of one\n\nThe virus spreads by droplets. It was found by Smith et al. in 2020. Masks help."
    context_2 = "Another article. Its answer is forty-two. The end."
    squad = {
        "data": [
            {
                "paragraphs": [
                    {
                        "document_id": 7,
                        "context": context_1,
                        "qas": [
                            {
                                "id": 1,
                                "question": "Who found it?",
                                "is_impossible": False,
                                "answers": [
                                    {"text": "Smith", "answer_start": context_1.index("Smith")}
                                ],
                            },
                            # Offset off by one, as in the published file: the nearest occurrence is used.
                            {
                                "id": 2,
                                "question": "How does it spread?",
                                "answers": [
                                    {
                                        "text": "by droplets. ",
                                        "answer_start": context_1.index("by droplets") + 1,
                                    },
                                    {"text": "droplets", "answer_start": 0},
                                ],
                            },
                        ],
                    }
                ]
            },
            {
                "paragraphs": [
                    {
                        "document_id": "x/9",
                        "context": context_2,
                        "qas": [
                            {
                                "id": 3,
                                "question": "What is the answer?",
                                "answers": [
                                    {"text": "forty-two", "answer_start": context_2.index("forty")}
                                ],
                            },
                            {
                                "id": 4,
                                "question": "Impossible?",
                                "is_impossible": True,
                                "answers": [],
                            },
                        ],
                    }
                ]
            },
        ]
    }
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    dataset = convert_covidqa(tmp_path / "squad.json", tmp_path / "out")
    first, second, third, fourth = dataset.questions
    assert first.documents == ["7.txt"] and first.pages == [GoldPage(document="7.txt", page=1)]
    assert (dataset.documents_dir / "7.txt").read_text() == context_1
    assert first.contexts == ["It was found by Smith et al. in 2020."]
    assert second.answer == "by droplets." and second.contexts == ["The virus spreads by droplets."]
    assert third.documents[0].startswith("x_9-") and third.contexts == ["Its answer is forty-two."]
    assert not fourth.answerable and fourth.documents is None
    assert [q.id for q in dataset.questions] == ["covidqa-1", "covidqa-2", "covidqa-3", "covidqa-4"]


@pytest.mark.unit
def test_sentences_around_spans_several_sentences() -> None:
    text = "One here. Two starts; and ends. Three. Four."
    assert (
        sentences_around(text, text.index("starts"), text.index("Three") + 3)
        == "Two starts; and ends. Three."
    )
    assert sentences_around(text, 0, 3) == "One here."


@pytest.mark.unit
def test_convert_llamaindex_sample(tmp_path: Path) -> None:
    from fpdf import FPDF

    src = tmp_path / "paul"
    (src / "source_files" / "notes").mkdir(parents=True)
    (src / "source_files" / "essay.txt").write_text(
        "Before college I wrote.\nI  worked on   programming\nand writing."
    )
    pdf = FPDF()
    for text in ["Cover page text.", "The second page talks about painting in Florence."]:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 10, text)
    pdf.output(str(src / "source_files" / "notes" / "talk.pdf"))
    examples = [
        {
            "query": "What did he work on?",
            "reference_contexts": ["I worked on programming and writing."],
            "reference_answer": "Programming and writing.",
            "query_by": {"type": "ai"},
        },
        {
            "query": "Where did he paint?",
            "reference_contexts": ["painting in Florence"],
            "reference_answer": "Florence",
        },
        {
            "query": "Not in any file?",
            "reference_contexts": ["nothing like this anywhere"],
            "reference_answer": "n/a",
        },
    ]
    (src / "rag_dataset.json").write_text(json.dumps({"examples": examples}))
    dataset = convert_llamaindex(src, tmp_path / "out")
    first, second, third = dataset.questions
    assert first.documents == ["essay.txt"] and first.pages == [
        GoldPage(document="essay.txt", page=1)
    ]
    assert first.contexts == ["I worked on programming and writing."]
    assert second.pages == [GoldPage(document="notes/talk.pdf", page=2)]
    assert third.documents is None and third.answer == "n/a"
    assert sorted(dataset.relative_document(p) for p in dataset.document_files()) == [
        "essay.txt",
        "notes/talk.pdf",
    ]


@pytest.mark.unit
def test_convert_beir_sample(tmp_path: Path) -> None:
    src = tmp_path / "scifact"
    (src / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Title one", "text": "Body one."},
        {"_id": "d/2", "title": "", "text": "Body two."},
        {"_id": "d3", "title": "Three", "text": "Body three."},
    ]
    (src / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    queries = [
        {"_id": "q1", "text": "first?"},
        {"_id": "q2", "text": "second?"},
        {"_id": "q3", "text": "train only?"},
    ]
    (src / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (src / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t0\nq2\td/2\t2\nq2\td3\t1\n"
    )
    dataset = convert_beir(src, tmp_path / "out")
    assert [q.id for q in dataset.questions] == ["q1", "q2"]
    first, second = dataset.questions
    assert first.documents == ["d1.txt"]
    assert second.documents[0].startswith("d_2-") and second.documents[1] == "d3.txt"
    assert (dataset.documents_dir / "d1.txt").read_text() == "Title one\n\nBody one."
    assert (dataset.documents_dir / second.documents[0]).read_text() == "Body two."
    assert len(dataset.document_files()) == 3


@pytest.mark.unit
def test_convert_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="use one of docugami, covidqa, llamaindex, beir"):
        convert("squad3", tmp_path, tmp_path / "out")


# ---------------------------------------------------------------- the shared real sets


def shared_eval_dir() -> Path:
    return Path(os.environ.get("RAG_EVAL_DATA") or REPO_ROOT.parent / "shared" / "eval")


requires_shared_sets = pytest.mark.skipif(
    not shared_eval_dir().is_dir(),
    reason=f"shared evaluation sets not found at {shared_eval_dir()}: set RAG_EVAL_DATA to their folder",
)


@pytest.mark.integration
@requires_shared_sets
def test_real_docugami_converts_to_195_questions(tmp_path: Path) -> None:
    dataset = convert_docugami(shared_eval_dir() / "docugami_sec_10q", tmp_path / "docugami")
    reloaded = load_dataset(tmp_path / "docugami")
    assert len(reloaded.questions) == 195
    assert len(reloaded.document_files()) == 20
    assert all(q.documents and q.answer for q in reloaded.questions)
    assert reloaded.questions == dataset.questions


@pytest.mark.integration
@requires_shared_sets
def test_real_covidqa_converts_every_question(tmp_path: Path) -> None:
    json_path = shared_eval_dir() / "covid_qa" / "200423_covidQA.json"
    articles = json.loads(json_path.read_text())["data"]
    expected = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    dataset = load_dataset(convert_covidqa(json_path, tmp_path / "covid").root)
    assert len(dataset.questions) == expected
    assert len(dataset.document_files()) == len(
        {p["document_id"] for a in articles for p in a["paragraphs"]}
    )
    # Every reference passage holds its answer, inside the gold document's text.
    texts = {
        name: (dataset.documents_dir / name).read_text()
        for name in {q.documents[0] for q in dataset.questions}
    }
    for question in dataset.questions:
        assert question.contexts and question.answer in question.contexts[0]
        assert question.contexts[0] in texts[question.documents[0]]
