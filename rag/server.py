"""One process, two faces: the Streamlit app and the REST API in one ASGI application.

Streamlit's `st.App(script_path, routes=..., lifespan=...)` serves app.py and its pages; the routes add
the FastAPI apps under `/api/v1` and `/v1`, and `/health`, `/ready`, `/metrics`. The pages and the API
call the one RagService of the process (rag/web.py's cached one), so the embedded store has one owner.
`rag serve` runs it with uvicorn; `streamlit run app.py` still serves the UI alone.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.routing import Mount

from core.errors import RagError
from core.settings import Settings
from rag.api import Readiness, create_api, create_openai_api, probe_routes
from rag.auth import ApiKeys
from rag.client import ServerRecord, answers
from rag.jobs import IngestJobs
from rag.metrics import ServingMetrics
from rag.service import RagService
from rag.web import get_service
from rag.web_login import oidc_secrets

logger = logging.getLogger(__name__)

APP_SCRIPT = Path(__file__).resolve().parent.parent / "app.py"


class ApiMount(Mount):
    """A Mount that takes every path under its prefix: Starlette's own pattern stops at a newline
    (`%0A` in a collection name), which would hand such a request to the web app instead of the API."""

    def __init__(self, path: str, app: Any) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def client_url(address: str, port: int) -> str:
    """The URL a client on this machine uses for a server listening on `address`."""
    host = "127.0.0.1" if address in ("", "0.0.0.0") else "::1" if address == "::" else address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def warm_up(service: RagService, readiness: Readiness, samples: bool) -> None:
    """Open the store and load the embedding model and the text tools answers use (and ingest the
    samples when asked), then be ready."""
    from answer.grounding import warm_up as load_text_tools

    try:
        service.list_collections()
        service.embedder.warm_up()
        # Questions are embedded in fp32 (a collection may hold int8 chunks).
        service.embedders.for_questions(service.settings.default_collection).warm_up()
        service.sentence_embedder.warm_up()
        load_text_tools()
        if samples:
            report = service.ensure_samples()
            if report is not None:
                logger.warning("Sample documents ingested: %d chunks into '%s'", report.chunks_added,
                               service.settings.default_collection)
        readiness.set_ready()
    except Exception as exc:  # /ready says why; the pages show the same error
        if not isinstance(exc, RagError):
            logger.exception("warm-up failed")
        readiness.set_failed(f"Not ready: {exc}")


def build_app(*, settings: Settings | None = None, advertise_url: str | None = None, samples: bool = False,
              wait_ready: bool = False) -> st.App:
    """The whole application. `advertise_url`: written to RAG_HOME/server.json for the `rag` command;
    `samples`: ingest the sample documents when the default collection is empty; `wait_ready`: the
    lifespan returns only once warm-up is over (tests), instead of warming up in the background."""
    settings = settings or Settings()
    keys = ApiKeys.from_setting(settings.api_keys)
    metrics_keys = ApiKeys.from_setting(settings.metrics_keys)
    metrics = ServingMetrics(monitor_window=settings.metrics_monitor_window)
    readiness = Readiness()
    instance = uuid.uuid4().hex
    jobs = IngestJobs(settings.uploads_dir / ".jobs", settings.logs_dir / "jobs.sqlite",
                      on_failure=lambda job: metrics.observe_failed_job())

    def service_of() -> RagService:
        # The pages' own cached service: the API and the web app share it.
        service = get_service()
        metrics.watch(service)
        return service

    routes = [
        *probe_routes(instance=instance, readiness=readiness, metrics=metrics, metrics_keys=metrics_keys,
                      service_of=service_of),
        ApiMount("/api/v1", create_api(service_of, keys=keys, jobs=jobs, metrics=metrics)),
        ApiMount("/v1", create_openai_api(service_of, keys=keys, metrics=metrics)),
    ]

    @asynccontextmanager
    async def lifespan(app: st.App) -> AsyncIterator[dict[str, Any]]:
        record = ServerRecord(settings.home, advertise_url, instance) if advertise_url else None
        worker = threading.Thread(target=warm_up, args=(service_of(), readiness, samples), name="warm-up",
                                  daemon=True)
        worker.start()
        if wait_ready:
            worker.join()
        if record is not None:
            record.write()
        try:
            yield {"readiness": readiness, "metrics": metrics, "jobs": jobs}
        finally:
            if record is not None:
                record.remove()
            jobs.close()
            get_service().close()

    # The web UI's login (rag/web_login.py): the RAG_OIDC_* settings become Streamlit's [auth] secrets.
    login = oidc_secrets(settings, advertise_url)
    return st.App(str(APP_SCRIPT), routes=routes, lifespan=lifespan, secrets=login)


def serve(*, port: int, address: str, samples: bool) -> None:
    """Run the app and the API with uvicorn until stopped (`rag serve`)."""
    import uvicorn
    from streamlit import config
    from streamlit.auth_util import is_authlib_installed

    # A server reruns nothing when files change: no watcher (STREAMLIT_SERVER_FILE_WATCHER_TYPE overrides).
    os.environ.setdefault("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")
    settings = Settings()
    running = ServerRecord.read(settings.home)
    if running is not None and answers(running["url"], running["instance"]):
        raise RagError(f"rag serve already runs for this RAG_HOME at {running['url']}: use it, or stop it first.")
    keys = ApiKeys.from_setting(settings.api_keys)
    url = client_url(address, port)
    print(f"Web app and API: {url} (API docs {url}/api/v1/docs, OpenAI-compatible {url}/v1, "
          f"probes /health /ready, metrics /metrics)", flush=True)
    if keys.enabled:
        print("API keys: set (RAG_API_KEYS); /health and /ready are open.", flush=True)
    else:
        print("No API keys (RAG_API_KEYS): the API answers requests from 127.0.0.1 only.", flush=True)
    app = build_app(settings=settings, advertise_url=url, samples=samples)
    login = oidc_secrets(settings, url)
    if login is None:
        print("The web UI has no login (no RAG_OIDC_* settings): keep it on 127.0.0.1 or put it behind an "
              "authenticating proxy.", flush=True)
    else:
        if not is_authlib_installed():
            raise RagError("The web login needs Authlib: pip install 'rag-qa[auth]' (or unset RAG_OIDC_*).")
        allowed = settings.web_allowed_users or "anyone the provider logs in"
        print(f"The web UI asks for a login: OpenID Connect ({settings.oidc_server_metadata_url}), "
              f"redirect {login['auth']['redirect_uri']}; allowed: {allowed}.", flush=True)
    uvicorn.run(
        app, host=address, port=port, access_log=False, use_colors=False, log_level="info",
        # Streamlit's own limits for its websocket (what `streamlit run` would use).
        ws_max_size=int(config.get_option("server.maxMessageSize")) * 1_000_000,
        ws_per_message_deflate=bool(config.get_option("server.enableWebsocketCompression")),
    )
