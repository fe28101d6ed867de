"""The `rag` command line: ingest, ask, eval, docs, collections, serve."""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import RagError
from core.types import Answer
from llm.registry import ANSWERER_HELP, RERANKER_HELP

app = typer.Typer(help="Ask questions of your own documents.", no_args_is_help=True, add_completion=False)
docs_app = typer.Typer(help="List or delete the documents of a collection.", no_args_is_help=True)
collections_app = typer.Typer(help="List, create or delete collections.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(collections_app, name="collections")

console = Console(stderr=True)
out = Console()


def _service():  # noqa: ANN202
    from rag.service import RagService

    return RagService(source="cli")


def _client():  # noqa: ANN202
    """A running server's API when one answers (rag/client.py: same results), else a service of our own."""
    from rag.client import connect

    return connect()


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))


def _shown(text: str) -> str:
    """Text from a file or its name, safe to print: no console markup, and control and format
    characters (a newline, a right-to-left mark) written as escapes instead of acted on."""
    visible = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Cf")
                      else ch for ch in text)
    return escape(visible)


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        _emit_json({"error": message})
    else:
        console.print(f"[red]Error:[/red] {escape(message)}")
    raise typer.Exit(2)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (folders are walked)"),
    collection: str = typer.Option(None, "--collection", "-c", help="Collection name (default: RAG_DEFAULT_COLLECTION)"),
    chunker: str = typer.Option(None, help="fixed | sentence | recursive | semantic"),
    chunk_size: int | None = typer.Option(None, help="Tokens per chunk"),
    chunk_overlap: int | None = typer.Option(None, help="Tokens shared by neighbouring chunks"),
    password: str | None = typer.Option(None, help="Password for encrypted PDFs"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Ingest files into a collection. Unchanged files are skipped; changed ones are replaced whole."""
    try:
        service = _client()
        collection = collection or service.settings.default_collection
        options = service.chunking_options(chunker, chunk_size, chunk_overlap)
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    missing = [str(p) for p in paths if not p.exists()]
    show_bar = not as_json and sys.stderr.isatty()
    if show_bar:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("Ingesting", total=None)

            def progress(event: dict[str, Any]) -> None:
                bar.update(task, total=event["total"], completed=event["index"] - (event["event"] == "start"),
                           description=f"{Path(event['file']).name[:40]}")

            report = _run_ingest(service, paths, collection, options, progress, password, as_json)
    else:
        report = _run_ingest(service, paths, collection, options, None, password, as_json)
    from rag.schemas import FileResultOut, IngestReportOut

    shown = IngestReportOut.from_report(report)  # the API's model: `--json` has its field names
    shown.files += [FileResultOut(path=path, status="failed", error="no such file or folder") for path in missing]
    data = shown.model_dump(mode="json")
    failed = [f for f in data["files"] if f["status"] == "failed"]
    if as_json:
        _emit_json(data)
    else:
        for f in data["files"]:
            colour = {"ingested": "green", "skipped": "yellow", "failed": "red"}[f["status"]]
            # A file skipped with a reason (a type no reader takes) says it; without one it was unchanged.
            status = "skipped" if f["status"] == "skipped" and f["error"] else (
                "skipped, unchanged" if f["status"] == "skipped" else f["status"])
            detail = f" - {f['error']}" if f["error"] else f" ({f['pages']} pages, {f['chunks']} chunks)"
            out.print(f"[{colour}]{status}[/{colour}] {_shown(f['path'] + detail)}")
        counts = {s: sum(1 for f in data["files"] if f["status"] == s) for s in ("ingested", "skipped", "failed")}
        out.print(
            f"{counts['ingested']} ingested, {counts['skipped']} skipped, {counts['failed']} failed; "
            f"{data['chunks_added']} chunks added to '{collection}' in {data['seconds']:.1f} s"
        )
    service.close()
    raise typer.Exit(1 if failed else 0)


def _run_ingest(service, paths, collection, options, progress, password, as_json):  # noqa: ANN001, ANN202
    try:
        return service.ingest([p for p in paths if p.exists()], collection, options, progress=progress, password=password)
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)


@docs_app.command("list")
def docs_list(
    collection: str = typer.Option(None, "--collection", "-c"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The documents of a collection: name, pages, chunks, chunker, ingested-at."""
    service = _client()
    collection = collection or service.settings.default_collection
    try:
        docs = service.list_documents(collection)
    except RagError as exc:
        _fail(str(exc), as_json)
    if as_json:
        from rag.schemas import DocumentOut, DocumentsOut

        _emit_json(DocumentsOut(collection=collection, documents=[DocumentOut.from_info(d) for d in docs]
                                ).model_dump(mode="json"))
        return
    table = Table("document", "type", "pages", "chunks", "chunker", "ingested at", title=f"Collection '{collection}'")
    for d in docs:
        table.add_row(_shown(d.source), d.file_type, str(d.pages), str(d.chunks), d.chunker, d.ingested_at)
    out.print(table)


@docs_app.command("delete")
def docs_delete(
    name: str = typer.Argument(..., help="Document name (as listed) or id"),
    collection: str = typer.Option(None, "--collection", "-c"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete one document and all its chunks."""
    service = _client()
    collection = collection or service.settings.default_collection
    try:
        deleted = service.delete_document(collection, name)
    except RagError as exc:
        _fail(str(exc), as_json)
    if as_json:
        from rag.schemas import DocumentDeletedOut

        _emit_json(DocumentDeletedOut(collection=collection, document=name, deleted_chunks=deleted).model_dump(mode="json"))
    else:
        out.print(f"Deleted {_shown(name)} ({deleted} chunks) from '{collection}'")


@collections_app.command("list")
def collections_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Collections with their document and chunk counts."""
    try:
        infos = _client().list_collections()
    except RagError as exc:
        _fail(str(exc), as_json)
    if as_json:
        from rag.schemas import CollectionOut, CollectionsOut

        _emit_json(CollectionsOut(collections=[CollectionOut(name=i.name, documents=i.documents, chunks=i.chunks)
                                               for i in infos]).model_dump(mode="json"))
        return
    table = Table("collection", "documents", "chunks")
    for i in infos:
        table.add_row(i.name, str(i.documents), str(i.chunks))
    out.print(table)


@collections_app.command("create")
def collections_create(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Create an empty collection."""
    _change_collection("create", name, as_json)


@collections_app.command("delete")
def collections_delete(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete a collection and everything in it."""
    _change_collection("delete", name, as_json)


def _change_collection(action: str, name: str, as_json: bool) -> None:
    service = _client()
    try:
        (service.create_collection if action == "create" else service.delete_collection)(name)
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    finally:
        service.close()
    from rag.schemas import CollectionCreatedOut, CollectionDeletedOut

    past = f"{action}d"
    shown = CollectionCreatedOut(created=name) if action == "create" else CollectionDeletedOut(deleted=name)
    _emit_json(shown.model_dump(mode="json")) if as_json else out.print(f"{past.capitalize()} collection '{name}'")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question"),
    collection: str = typer.Option(None, "--collection", "-c"),
    top_k: int | None = typer.Option(None, "--top-k", help="Sources to answer from"),
    reranker: str | None = typer.Option(None, help=RERANKER_HELP),
    answerer: str | None = typer.Option(None, help=ANSWERER_HELP),
    documents: list[str] | None = typer.Option(
        None, "--document", "-d", help="Ask only this document (name or id, as `rag docs list` shows it); repeatable"),
    previous: list[str] | None = typer.Option(
        None, "--previous", "-p", help="An earlier question of the conversation, oldest first; repeatable. "
        "A follow-up ('And in Q2 2023?') is rewritten to stand alone from them before search"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer a question from a collection, with numbered citations."""
    service = _client()
    try:
        stream = service.ask_stream(question, collection, top_k=top_k, reranker=reranker, answerer=answerer,
                                    documents=documents, history=previous)
        answer = stream.result()
        standalone = stream.trace.standalone_question if stream.trace else ""
        searched = stream.trace.searched if stream.trace else ""
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    finally:
        service.close()
    if as_json:
        _emit_json({**answer_json(answer), "standalone_question": standalone, "searched": searched})
        return
    if standalone and standalone != question.strip():
        out.print(f"Searched for: {standalone}", style="dim", markup=False, highlight=False)
    if searched and searched != (standalone or question.strip()):
        out.print(f"Searched as: {searched} (without the instructions to whoever answers, with any statement they "
                  "point to)", style="dim",
                  markup=False, highlight=False)
    out.print(answer.text, markup=False, highlight=False)
    for c in answer.citations:
        out.print(f"[{c.n}] {c.document}, page {c.page} (score {c.score:.3f})", markup=False, highlight=False)
    for w in answer.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}", markup=True, highlight=False)
    t = answer.timings_ms
    out.print(
        f"{answer.provider}, reranker {answer.reranker}; {t.get('total', 0):.0f} ms; "
        f"{answer.usage.input_tokens}+{answer.usage.output_tokens} tokens; ${answer.cost_usd:.5f}",
        style="dim", markup=False, highlight=False,
    )


def answer_json(answer: Answer) -> dict[str, Any]:
    """The `rag ask --json` object: the API's answer model (rag/schemas.py), the same field names."""
    from rag.schemas import AnswerOut

    return AnswerOut.from_answer(answer).model_dump()


@app.command("eval")
def eval_command(
    target: list[str] = typer.Argument(..., metavar="DATASET | convert KIND SRC OUT",
                                       help="A data set folder, or 'convert docugami|covidqa|llamaindex|beir SRC OUT'"),
    chunker: str | None = typer.Option(None, help="fixed | sentence | recursive | semantic"),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Tokens per chunk"),
    chunk_overlap: int | None = typer.Option(None, "--chunk-overlap", help="Tokens shared by neighbours"),
    retrieval: str | None = typer.Option(None, "--retrieval", help="hybrid | dense | sparse"),
    reranker: str | None = typer.Option(None, help=RERANKER_HELP),
    answerer: str | None = typer.Option(None, help="extractive | provider chain, e.g. openai,extractive"),
    top_k: int | None = typer.Option(None, "--top-k", help="Sources each answer uses"),
    judge: str | None = typer.Option(
        None, "--judge", help="LLM provider(s) for RAGAS faithfulness and answer relevancy, e.g. openai"),
    limit: int | None = typer.Option(None, help="Only the first N questions"),
    split: str = typer.Option("all", "--split", help="dev (tune on it) | test (report on it) | all"),
    unanswerable_from: Path | None = typer.Option(
        None, "--unanswerable-from", help="Another data set whose questions (of the same --split) become unanswerable ones"),
    unanswerable: int = typer.Option(10, "--unanswerable", help="How many to add with --unanswerable-from"),
    hard_negatives: int = typer.Option(
        0, "--hard-negatives", help="Also ask N of its questions with their gold documents filtered out"),
    answers: bool = typer.Option(True, "--answers/--no-answers", help="--no-answers: retrieval metrics only, faster"),
    starter: bool = typer.Option(True, "--starter/--no-starter", help="Also measure the LlamaIndex starter pipeline"),
    grid: bool = typer.Option(False, "--grid", help="Chunkers x retrieval modes x reranker off/on, one table"),
    grid_chunkers: str = typer.Option("fixed,sentence,recursive", "--grid-chunkers", help="Chunkers of the grid"),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for report.json and report.md"),
    overwrite: bool = typer.Option(False, "--overwrite", help="convert: replace an existing OUT folder"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Evaluate retrieval and answers on a data set, or convert a data set into the eval format."""
    if target[0] == "convert":
        _eval_convert(target[1:], overwrite, as_json)
        return
    if len(target) != 1:
        _fail("Give one data set folder, or 'convert KIND SRC OUT'.", as_json)
    from evaluation.datasets import load_dataset, with_hard_negatives, with_unanswerable
    from evaluation.runner import EvalConfig, EvaluationRunner, run_grid

    try:
        dataset = load_dataset(target[0]).split(split)
        if limit:
            dataset = dataset.limit(limit)
        if hard_negatives:
            dataset = dataset.with_questions(dataset.questions + with_hard_negatives(dataset, hard_negatives))
        if unanswerable_from is not None:
            # the other set's questions of the same split, as `rag calibrate` takes them: a test run asks none
            # of the questions a calibration on dev saw
            other = load_dataset(unanswerable_from).split(split)
            dataset = dataset.with_questions(dataset.questions + with_unanswerable(dataset, other, unanswerable))
        service = _service()
        config = EvalConfig(chunker=chunker, chunk_size=chunk_size, chunk_overlap=chunk_overlap, retrieval=retrieval,
                            reranker=reranker, answerer=answerer, top_k=top_k, answers=answers and not grid,
                            judge=judge)
        if judge and not config.answers:
            raise ValueError("--judge scores answers: drop --no-answers (and --grid)")
        if judge:
            from evaluation.llm_judge import RagasJudge

            RagasJudge.from_spec(judge, service.settings, service.embedder.embed)  # a missing key fails here
        config.resolved(service.settings).chunking(service.settings)
        runner = EvaluationRunner(service)
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    show_bar = not as_json and sys.stderr.isatty()
    from contextlib import nullcontext

    from rich.progress import Progress

    bar_context = Progress(console=console, transient=True) if show_bar else nullcontext()
    with bar_context as bar:
        task = bar.add_task("Ingesting", total=None) if bar else None

        def on_question(done: int, total: int) -> None:
            if bar:
                bar.update(task, total=total, completed=done, description="Questions")

        def on_file(event: dict[str, Any]) -> None:
            if bar:
                bar.update(task, total=event["total"], completed=event["index"] - (event["event"] == "start"),
                           description=f"Ingesting {Path(event['file']).name[:30]}")

        try:
            if grid:
                cells = run_grid(runner, dataset, config, reranker=reranker, progress=on_question,
                                 ingest_progress=on_file, chunkers=tuple(c.strip() for c in grid_chunkers.split(",")))
            else:
                run = runner.run(dataset, config, starter=starter, progress=on_question, ingest_progress=on_file)
        except (RagError, ValueError) as exc:
            _fail(str(exc), as_json)
    if grid:
        _show_grid(dataset.name, cells, out_dir, as_json)
    else:
        _show_run(service, run, out_dir, as_json)
    service.close()


def _eval_convert(args: list[str], overwrite: bool, as_json: bool) -> None:
    if len(args) != 3:
        _fail("Usage: rag eval convert docugami|covidqa|llamaindex|beir SRC OUT", as_json)
    from evaluation.converters import convert

    kind, src, dest = args
    try:
        dataset = convert(kind, src, dest, overwrite=overwrite)
    except (RagError, ValueError, OSError) as exc:
        _fail(str(exc), as_json)
    data = {"dataset": str(dataset.root), "questions": len(dataset.questions),
            "unanswerable": sum(1 for q in dataset.questions if not q.answerable),
            "documents": len(dataset.document_files())}
    if as_json:
        _emit_json(data)
    else:
        out.print(f"Wrote {data['questions']} questions and {data['documents']} documents to {data['dataset']}")


def _show_run(service: Any, run: Any, out_dir: Path | None, as_json: bool) -> None:
    from evaluation.report import retrieval_names, write_reports
    from evaluation.run_store import RunStore

    store = RunStore(service.settings.logs_dir / "evaluation.sqlite")
    run_id = store.save(run)
    store.close()
    tracked = service.track_evaluation(run)
    if tracked is not None and not as_json:
        console.print(f"Logged to MLflow: run {tracked.run_id} at {tracked.tracking_uri}", highlight=False)
    if out_dir is not None:
        write_reports(run, out_dir)
    if as_json:
        _emit_json(run.summary())
        return
    table = Table("metric", "ours", *(["LlamaIndex starter"] if run.starter else []),
                  title=f"{run.dataset}: {run.questions} questions, {run.seconds:.0f} s (run {run_id})")
    shown = retrieval_names(run.metrics)
    for name in shown:
        table.add_row(name, _fmt(run.metrics[name]), *([_fmt(run.starter.metrics.get(name))] if run.starter else []))
    for name, value in run.metrics.items():
        if name not in shown and isinstance(value, float):
            table.add_row(name, f"{value:.3f}", *(["-"] if run.starter else []))
    out.print(table)
    for note in run.ours.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if out_dir is not None:
        out.print(f"Reports: {out_dir / 'report.md'}, {out_dir / 'report.json'}")


@app.command("calibrate")
def calibrate_command(
    datasets: list[Path] = typer.Argument(..., metavar="DATASET...",
                                          help="Data set folder(s); several are pooled into one curve"),
    collection: str | None = typer.Option(
        None, "--collection", help="Write the chosen threshold to this collection's settings"),
    split: str = typer.Option("dev", "--split", help="dev (default: calibrate on dev, report on test) | test | all"),
    hard_negatives: int = typer.Option(
        30, "--hard-negatives", help="Questions of each set asked with their gold documents filtered out"),
    unanswerable_from: list[Path] | None = typer.Option(
        None, "--unanswerable-from", help="Set(s) whose questions become foreign negatives (default: the other DATASETs)"),
    unanswerable: int = typer.Option(30, "--unanswerable", help="Foreign negatives added to each set"),
    limit: int | None = typer.Option(None, help="Only the first N questions of each set's split"),
    answerer: str | None = typer.Option(None, help="extractive | provider chain, e.g. openai,extractive"),
    top_k: int | None = typer.Option(None, "--top-k", help="Sources each answer uses"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Choose the abstention threshold: answer most answerable questions whose gold document was found
    while refusing >= 95 % of foreign and >= 60 % of hard negatives; print the trade-off curve."""
    from evaluation.calibrate import calibrate, with_negatives
    from evaluation.datasets import load_dataset
    from evaluation.runner import EvalConfig, EvaluationRunner

    try:
        loaded = [load_dataset(d).split(split) for d in datasets]
        if limit:
            loaded = [d.limit(limit) for d in loaded]
        foreign = [load_dataset(o).split(split) for o in unanswerable_from] if unanswerable_from else loaded
        prepared = [with_negatives(d, hard=hard_negatives, foreign_from=foreign, foreign=unanswerable) for d in loaded]
        service = _service()
        if collection is not None and not service.store.collection_exists(collection):
            raise RagError(f"No collection named {collection!r}: `rag collections list` shows the existing ones.")
        runner = EvaluationRunner(service)
        total = sum(len(d.questions) for d in prepared)
        done = [0]
        show_bar = not as_json and sys.stderr.isatty()
        from contextlib import nullcontext

        from rich.progress import Progress

        with Progress(console=console, transient=True) if show_bar else nullcontext() as bar:
            task = bar.add_task("Questions", total=total) if bar else None

            def on_question() -> None:
                done[0] += 1
                if bar:
                    bar.update(task, completed=done[0])

            result = calibrate(runner, prepared, EvalConfig(answerer=answerer, top_k=top_k), on_question=on_question)
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    data = result.to_dict()
    data["split"] = split
    written = None
    if collection is not None and result.chosen is not None:
        from datetime import UTC, datetime

        from core.collection_settings import load_collection_settings, save_collection_settings

        own = load_collection_settings(service.settings.home, collection)
        own.abstain_threshold = result.chosen.threshold
        own.calibration = {"datasets": [str(d) for d in datasets], "split": split, "chosen": data["chosen"],
                           "min_refusal": data["min_refusal"], "questions": data["questions"],
                           "at": datetime.now(UTC).isoformat(timespec="seconds")}
        written = save_collection_settings(service.settings.home, collection, own)
        data["written_to"] = str(written)
    service.close()
    if as_json:
        _emit_json(data)
    else:
        _show_calibration(result, split, collection, written)
    if result.chosen is None:
        raise typer.Exit(1)


def _show_calibration(result: Any, split: str, collection: str | None, written: Path | None) -> None:
    names = ", ".join(s.name for s in result.sets)
    kinds = [k for k in ("foreign", "hard") if any(d.kind == k for d in result.decisions)]
    table = Table("threshold", "answered (gold in top 5)", *(f"refused {k}" for k in kinds),
                  title=f"Abstention trade-off: {names} ({split}, pooled)")
    chosen = result.chosen.threshold if result.chosen else None
    for point in result.report_curve():
        mark = "  <- chosen" if chosen is not None and abs(point.threshold - chosen) < 1e-9 else (
            "  <- now" if abs(point.threshold - result.run_threshold) < 1e-9 else "")
        table.add_row(f"{point.threshold:.2f}{mark}", _fmt(point.answered_rate),
                      *(_fmt(point.refusal.get(k)) for k in kinds))
    out.print(table)
    counts = result.to_dict()["questions"]
    out.print(f"Questions: {counts['answerable']} answerable "
              f"({sum(1 for d in result.decisions if d.kind == 'answerable' and d.found)} with the gold document "
              f"in the top 5), {counts['foreign']} foreign and {counts['hard']} hard negatives.")
    for kind in ("foreign", "hard"):
        if kind not in kinds:
            console.print(f"[yellow]note:[/yellow] no {kind} negatives: the {kind} constraint is not checked.")
    if result.chosen is None:
        out.print("No threshold refuses enough negatives: nothing written.")
        return
    point = result.chosen
    refused = ", ".join(f"{point.refusal[k]:.3f} of {k}" for k in kinds)
    out.print(f"Chosen threshold {point.threshold:.2f} (pooled {split} of {names}): answers "
              f"{_fmt(point.answered_rate)} of the answerable questions whose gold document is in the top 5; "
              f"refuses {refused}. Now: {result.run_threshold:.2f}.")
    if len(result.sets) > 1:
        now = result.to_dict()["per_dataset_at_run_threshold"]
        for name, p in result.per_set.items():
            before = now[name]
            out.print(f"  {name}: answered {_fmt(p.answered_rate)} (now {_fmt(before['answered_rate'])}), "
                      + ", ".join(f"refused {p.refusal[k]:.3f} {k} (now {before[f'refusal_rate_{k}']:.3f})"
                                  for k in p.refusal))
    if written is not None:
        out.print(f"Written to collection {collection!r}: {written}")
    else:
        out.print("Not written anywhere: pass --collection NAME to use it for a collection "
                  "(or set RAG_ABSTAIN_THRESHOLD for all).")


def _show_grid(name: str, cells: list[Any], out_dir: Path | None, as_json: bool) -> None:
    metrics = ("hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10")
    if out_dir is not None:
        from evaluation.report import grid_table

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "grid.json").write_text(json.dumps([c.__dict__ for c in cells], indent=1, default=str))
        (out_dir / "grid.md").write_text(f"# Grid: {name}\n\n{grid_table([c.__dict__ for c in cells], metrics)}\n")
    if as_json:
        _emit_json({"dataset": name, "grid": [{"label": c.label, "metrics": c.metrics, "note": c.note} for c in cells]})
        return
    table = Table("pipeline", *metrics, title=f"Grid: {name} (retrieval only)")
    for c in cells:
        table.add_row(c.label, *(_fmt(c.metrics.get(m)) for m in metrics))
    out.print(table)
    for note in dict.fromkeys(c.note for c in cells if c.note):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command()
def monitor(
    window: str = typer.Option("1d", "--window", "-w", help="The last 30m, 12h, 1d, 7d ... or all"),
    collection: str | None = typer.Option(None, "--collection", "-c", help="Only this collection (default: each)"),
    source: str | None = typer.Option(None, "--source", help="Only requests from web, cli, api or eval"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    prometheus: bool = typer.Option(False, "--prometheus", help="Print the figures in Prometheus' text format"),
    new_reference: bool = typer.Option(
        False, "--new-reference", help="Drift compares --collection's next requests against those that follow now"),
    ab: bool = typer.Option(False, "--ab", help="Only the A/B comparison of the variants (RAG_AB) and their verdicts"),
) -> None:
    """Status, figures and alerts from the request log; exit 0 when all is well, 1 on warnings, 2 on critical.

    Reads the log only (never the store), so it runs beside the web app, e.g. from cron."""
    from rag.service import RagService

    service = RagService(source="cli")
    try:
        if new_reference:
            if not collection:
                raise ValueError("--new-reference needs --collection NAME")
            service.new_monitoring_reference(collection)
            _emit_json({"new_reference": collection}) if as_json else out.print(
                f"Drift of '{collection}' now compares against the requests that come from now on.")
            return
        report = service.monitoring(window, collection=collection, source=source)
        variants = service.ab_variants()
    except (RagError, ValueError) as exc:
        _fail(str(exc), as_json)
    finally:
        service.close()
    if ab:
        arms = report.ab.to_dict() if report.ab else {"arms": [], "verdicts": []}
        _emit_json({**arms, "variants": variants}) if as_json else _show_ab(report, variants)
        return
    if prometheus:
        from monitoring.prometheus import prometheus_text

        typer.echo(prometheus_text(report), nl=False)
    elif as_json:
        _emit_json(report.to_dict())
    else:
        _show_monitoring(report)
        if report.ab is not None:
            _show_ab(report, variants)
    raise typer.Exit({"ok": 0, "warning": 1, "critical": 2}[report.status])


def _show_ab(report: Any, variants: dict[str, dict[str, Any]]) -> None:
    if report.ab is None:
        out.print(f"No A/B variants in the window ({report.window}): set RAG_AB=name:share and RAG_AB_VARIANTS.",
                  highlight=False)
        return

    def rate(r: Any) -> str:
        if r.value is None:
            return "-"
        low, high = r.interval
        return f"{r.value:.1%} [{low:.1%}, {high:.1%}] of {r.n}"

    table = Table("arm", "requests", "p50 ms", "p95 ms [95% CI]", "errors", "abstention", "grounded", "helpful",
                  title=f"A/B variants ({report.window})")
    for arm in report.ab.arms:
        p95 = arm.latency_ms.get("p95")
        ci = arm.latency_interval_ms.get("p95")
        table.add_row(arm.name, str(arm.requests), _fmt_value(arm.latency_ms.get("p50")),
                      "-" if p95 is None else f"{p95:.0f} [{ci[0]:.0f}, {ci[1]:.0f}]", rate(arm.errors),
                      rate(arm.abstention), rate(arm.grounded), rate(arm.helpful))
    out.print(table)
    from core.variants import describe_choices

    for arm in report.ab.arms:
        out.print(f"{arm.name} sets: {describe_choices(arm.name, variants)}", markup=False, highlight=False)
    for v in report.ab.verdicts:
        colour = {"promote": "green", "keep": "yellow", "not enough data": "cyan"}[v.verdict]
        out.print(f"[{colour}]{v.name}: {v.verdict}[/{colour}] - {v.reason}", highlight=False)


def _show_monitoring(report: Any) -> None:
    colours = {"ok": "green", "info": "cyan", "warning": "yellow", "critical": "red"}
    scope = (f"window {report.window}, {('collection ' + repr(report.collection)) if report.collection else 'all collections'}"
             f", {('source ' + report.source) if report.source else 'all sources'}")
    status = report.status
    out.print(f"[{colours[status]}]{status.upper()}[/{colours[status]}] ({scope}): {report.requests} requests, "
              f"{report.errors} failed ({report.error_rate:.2%})", highlight=False)
    if report.sources:
        out.print("By source: " + ", ".join(f"{k} {v}" for k, v in sorted(report.sources.items())), highlight=False)
    latency = Table("latency (ms)", "p50", "p95", "p99", title="Latency")
    for stage in ("retrieval_path", "llm_answer", "embed", "retrieve", "rerank", "generate", "total"):
        values = report.latency_ms.get(stage) or {}
        if values:
            latency.add_row(stage, *(f"{values[p]:.0f}" for p in ("p50", "p95", "p99")))
    if latency.row_count:
        out.print(latency)
    out.print(f"Alerts: {len(report.alerts)}" if report.alerts else "No alerts.", highlight=False)
    for a in report.alerts:
        since = f"since {datetime.fromtimestamp(a.since, UTC):%Y-%m-%d %H:%M} UTC" if a.since else ""
        where = f" '{a.collection}'" if a.collection else ""
        out.print(f"[{colours[a.level]}]{a.level.upper()}[/{colours[a.level]}] {a.metric}{where} = "
                  f"{_fmt_value(a.value)} (threshold {_fmt_value(a.threshold)}, {a.window}) {since}", highlight=False)
        out.print(f"  {a.message}", markup=False, highlight=False)
        out.print(f"  -> {a.action}", markup=False, highlight=False)
    for drift in report.drift:
        w = drift.windows
        table = Table("signal", "level", "PSI", "KS", "p", "n ref/cur", "mean ref -> cur",
                      title=f"Drift of '{w.collection}': {w.reference_basis} vs the last {w.n_current} in the window")
        for c in drift.checks:
            if c.enough_data:
                table.add_row(c.signal, f"[{colours[c.level]}]{c.level}[/{colours[c.level]}]", f"{c.psi:.3f}",
                              f"{c.ks:.3f}", f"{c.p_value:.2g}", f"{c.n_reference}/{c.n_current}",
                              f"{c.reference_mean:.3g} -> {c.current_mean:.3g}")
            else:
                table.add_row(c.signal, "-", "-", "-", "-", f"{c.n_reference}/{c.n_current}", "not enough data")
        out.print(table)
        if w.note:
            out.print(f"note: {w.note}", style="dim", highlight=False)
    for q in report.quality:
        out.print(f"Quality of {q.dataset} (evaluation of "
                  f"{datetime.fromtimestamp(q.created_at, UTC):%Y-%m-%d}): {q.level}, {q.detail}", highlight=False)


def _fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


@app.command()
def serve(
    port: int = typer.Option(8501, help="Port to listen on"),
    address: str = typer.Option("127.0.0.1", help="Address to listen on"),
    samples: bool = typer.Option(True, help="Ingest the sample documents first when the default collection is empty"),
) -> None:
    """Run the web app and the REST API in one process (ingesting the sample documents first, when needed)."""
    from rag.server import serve as serve_app

    try:
        serve_app(port=port, address=address, samples=samples)
    except (RagError, ValueError) as exc:
        _fail(str(exc), False)


def main() -> None:
    """Entry point of the `rag` command."""
    app()


if __name__ == "__main__":
    main()
