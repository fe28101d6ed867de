"""One `rag serve`, a browser and an API client at the same time: what the API uploads, the Documents page
shows, and the web app and the API answer from the same store."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from tests.rag.serve_process import RagServeProcess
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TURBINE = ("Wind farm report. The Zephyr turbine produces 4.2 megawatts at a wind speed of twelve metres per "
           "second. Its blades are made of carbon fibre and measure sixty metres each.")


@pytest.fixture
def served(tmp_path):  # noqa: ANN001, ANN201
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed at /usr/bin/chromium (CI installs Debian's chromium package)")
    samples = tmp_path / "no_samples"
    samples.mkdir()
    server = RagServeProcess(tmp_path / "home", tmp_path / "serve.log", RAG_SAMPLES_DIR=str(samples))
    server.start()
    yield server
    server.stop()


def test_an_api_upload_shows_on_the_documents_page(served, test_output_dir) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, httpx.Client(base_url=served.url, timeout=120) as api:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{served.url}/documents")
            page.get_by_text("No collections yet").wait_for()

            accepted = api.post("/api/v1/collections/samples/documents",
                                files=[("files", ("api-upload.txt", TURBINE.encode(), "text/plain"))])
            assert accepted.status_code == 202, accepted.text
            job = accepted.json()
            deadline = time.monotonic() + 180
            while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.2)
                job = api.get(f"/api/v1/jobs/{job['id']}").json()
            assert job["status"] == "done" and job["report"]["files"][0]["status"] == "ingested", job

            page.reload()
            # Streamlit's select boxes hold the chosen option in their input's value.
            page.locator('input[aria-label="Collection"][value^="samples (1 docs"]').wait_for()
            page.get_by_text("Delete a document").click()
            page.locator('input[aria-label="Document"][value="api-upload.txt"]').first.wait_for()
            page.screenshot(path=str(test_output_dir / "browser_api_upload.png"), full_page=True)

            # The web app asks while the API asks: one process, one store, both answer.
            page.goto(served.url)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for()
            box.fill("How much power does the Zephyr turbine produce?")
            box.press("Enter")
            answer = api.post("/api/v1/collections/samples/ask", json={"question": "How long are the blades?"})
            page.get_by_text("Details:").first.wait_for()
            assert "4.2 megawatts" in page.get_by_test_id("stChatMessage").nth(1).inner_text()
            assert answer.status_code == 200 and "sixty metres" in answer.json()["answer"]
        finally:
            browser.close()
    assert "Traceback" not in served.log()
