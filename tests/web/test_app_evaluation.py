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
