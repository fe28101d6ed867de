"""The web UI behind Streamlit's st.login, end to end: `rag serve` with the RAG_OIDC_* settings pointing at an
OpenID Connect provider (a local stub that speaks the protocol), a real browser. Before logging in, every
page is the login prompt; the provider's round trip logs the person in and the app opens; logging out goes
through the provider's end-session endpoint and back to the prompt. The API keeps its own keys."""

from __future__ import annotations

import shutil

import httpx
import pytest

from tests.rag.serve_process import RagServeProcess
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.oidc_stub import OidcStub

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def provider():  # noqa: ANN201
    stub = OidcStub("rag-app", "client-s3cret", {"sub": "ada", "email": "ada@example.org",
                                                  "name": "Ada Lovelace", "email_verified": True}).start()
    yield stub
    stub.stop()


@pytest.fixture
def served(tmp_path, provider):  # noqa: ANN001, ANN201
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed at /usr/bin/chromium (CI installs Debian's chromium package)")
    samples = tmp_path / "no_samples"
    samples.mkdir()
    server = RagServeProcess(
        tmp_path / "home", tmp_path / "serve.log", RAG_SAMPLES_DIR=str(samples),
        RAG_OIDC_SERVER_METADATA_URL=provider.metadata_url, RAG_OIDC_CLIENT_ID="rag-app",
        RAG_OIDC_CLIENT_SECRET="client-s3cret", RAG_OIDC_COOKIE_SECRET="a-cookie-secret-of-enough-length-here",
        RAG_WEB_ALLOWED_USERS="@example.org", RAG_API_KEYS="api-key-1")
    server.start()
    yield server
    server.stop()


def test_the_web_ui_asks_for_a_login_through_the_provider(served, provider, test_output_dir) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    assert "The web UI asks for a login: OpenID Connect" in served.log()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            for path in ("/", "/documents", "/monitoring"):  # every page is the login prompt before login
                page.goto(f"{served.url}{path}")
                page.get_by_text("Log in to ask questions of the documents.").wait_for()
                assert page.get_by_test_id("stChatInputTextArea").count() == 0
                assert page.get_by_text("Upload documents").count() == 0
            page.screenshot(path=str(test_output_dir / "browser_login_prompt.png"), full_page=True)
            assert provider.logins == 0

            page.get_by_role("button", name="Log in").click()  # to the provider and back with a code
            page.get_by_test_id("stChatInputTextArea").wait_for()
            page.get_by_text("Signed in as Ada Lovelace").wait_for()
            assert provider.logins == 1
            page.goto(f"{served.url}/documents")  # the other pages open too, in the same login
            page.get_by_text("Signed in as Ada Lovelace").wait_for()
            assert page.get_by_text("Log in to ask questions of the documents.").count() == 0
            page.screenshot(path=str(test_output_dir / "browser_logged_in.png"), full_page=True)

            page.get_by_role("button", name="Log out").click()  # through the provider's end-session endpoint
            page.get_by_text("Log in to ask questions of the documents.").wait_for()
            assert provider.logouts == 1
            assert page.get_by_test_id("stChatInputTextArea").count() == 0
        finally:
            browser.close()
    # The login is the web UI's: the API still wants its keys, and the probes stay open.
    assert httpx.get(f"{served.url}/api/v1/collections", timeout=30).status_code == 401
    assert httpx.get(f"{served.url}/api/v1/collections", headers={"X-API-Key": "api-key-1"},
                     timeout=30).status_code == 200
    assert httpx.get(f"{served.url}/health", timeout=30).status_code == 200
    assert "Traceback" not in served.log()
