"""The Evaluation page shows stored runs with their metrics and per-question rows."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLES


@pytest.mark.integration
def test_evaluation_page_shows_a_stored_run(app, service) -> None:  # noqa: ANN001
    run = service.run_evaluation(str(SAMPLES), limit=6)
    assert run["metrics"]["hit@5"] is not None
    at = app.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception, at.exception
    frames = [df.value for df in at.dataframe]
    assert frames, "no table on the Evaluation page"
    columns = {str(c) for frame in frames for c in frame.columns}
    assert any("hit@5" in c for c in columns), columns
    assert any(len(frame) >= 6 for frame in frames)  # the per-question drill-down of the run


def _stored_run(service, dataset_path: str, hit: float, created_at: float) -> str:  # noqa: ANN001
    """A run saved in the app's evaluation store, as `rag eval` saves one (metrics given, no questions asked)."""
    from evaluation.runner import EvalRun, PipelineResult

    settings = {"chunker": "sentence", "chunk_size": 200, "retrieval": "hybrid", "top_k": 5}
    ours = PipelineResult("ours", settings, {"hit@5": hit, "mrr@10": hit / 2},
                          [{"id": "q1", "question": "What?", "answerable": True}], {}, 1.5)
    starter = PipelineResult("starter", {}, {"hit@5": 0.5}, [], {}, 1.0)
    return service.evaluation_store.save(EvalRun("tiny", dataset_path, 1, ours, starter, 2.5, created_at=created_at))


@pytest.mark.integration
def test_runs_table_has_one_readable_row_per_run(app, service, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "tmp_eval_copy" / "tiny"
    first = _stored_run(service, str(folder), 0.75, 1_790_000_000.0)
    second = _stored_run(service, str(folder), 0.8, 1_790_003_600.0)
    at = app.run()
    at.switch_page("pages/evaluation.py").run()
    # As after a run on the page: the run just made is kept in the session and is also in the store.
    at.session_state["evaluation_last"] = next(r for r in service.evaluation_runs() if r["id"] == second)
    at.run()
    assert not at.exception, at.exception
    [runs] = [df.value for df in at.dataframe if "date" in df.value.columns]
    assert len(runs) == 2, runs
    assert runs["run"].is_unique
    assert list(runs["date"]) == [
        __import__("datetime").datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
        for t in (1_790_003_600.0, 1_790_000_000.0)]
    assert list(runs["data set"]) == ["tiny", "tiny"]
    assert list(runs["metrics.hit@5"]) == [0.8, 0.75]
    shown = " ".join(str(v) for v in runs.to_numpy().ravel())
    assert str(tmp_path) not in shown  # the data set by name, not where it was on disk
    assert not any(isinstance(v, float) and v > 1e9 for v in runs.to_numpy().ravel())  # no raw epoch
    assert first != second


@pytest.mark.integration
def test_empty_evaluation_page_says_how_to_get_results(app, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    offered = tmp_path / "tiny_set"
    (offered / "documents").mkdir(parents=True)
    (offered / "documents" / "note.txt").write_text("The Zephyr turbine produces 4.2 megawatts.")
    (offered / "questions.jsonl").write_text("")
    monkeypatch.setenv("RAG_SAMPLES_DIR", str(offered / "documents"))
    at = app.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception, at.exception
    texts = " ".join(i.value for i in at.info)
    assert "No evaluation results yet" in texts and "rag eval" in texts
    assert "capability" not in texts
    [offer] = [s for s in at.selectbox if s.label == "Data set"]
    assert offer.options == ["tiny_set"]  # by its folder's name, not where it sits on disk
