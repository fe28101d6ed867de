"""`rag ... --json` prints the API's models (rag/schemas.py): the same objects, field for field, as the API
answers for the same store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.schemas import (
    CollectionCreatedOut,
    CollectionDeletedOut,
    CollectionsOut,
    DocumentDeletedOut,
    DocumentsOut,
    IngestReportOut,
)
from tests.rag.conftest import serving
from tests.rag.test_api import CANTEEN, TURBINE

pytestmark = pytest.mark.integration

runner = CliRunner()


def cli_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def test_the_cli_json_is_the_api_models(api_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "turbine.txt").write_text(TURBINE)
    (folder / "canteen.md").write_text(CANTEEN)
    ingested = cli_json("ingest", str(folder), str(tmp_path / "missing.pdf"), "--collection", "energy")
    assert IngestReportOut.model_validate(ingested).model_dump(mode="json") == ingested
    assert [f["status"] for f in ingested["files"]][-1] == "failed"  # the missing path, in the same model
    assert cli_json("collections", "create", "spare") == CollectionCreatedOut(created="spare").model_dump()
    assert cli_json("collections", "delete", "spare") == CollectionDeletedOut(deleted="spare").model_dump()
    documents = cli_json("docs", "list", "--collection", "energy")
    deleted = cli_json("docs", "delete", "canteen.md", "--collection", "energy")
    assert DocumentDeletedOut.model_validate(deleted).model_dump() == deleted and deleted["deleted_chunks"] > 0
    remaining = cli_json("docs", "list", "--collection", "energy")
    collections = cli_json("collections", "list")

    with serving() as api:  # the same store through the API: the same objects
        assert api.get("/api/v1/collections").json() == CollectionsOut.model_validate(collections).model_dump()
        assert api.get("/api/v1/collections/energy/documents").json() == remaining
    assert DocumentsOut.model_validate(documents).model_dump() == documents
    assert {d["source"] for d in documents["documents"]} == {"turbine.txt", "canteen.md"}
