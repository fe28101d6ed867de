"""The REST API, two FastAPI apps over the process's one RagService (rag/server.py mounts them):

- `/api/v1`: collections, documents (multipart upload ingested in the background, jobs), questions (JSON,
  or tokens as server-sent events), feedback;
- `/v1`: OpenAI's chat completions (model = collection), so existing chat clients can ask a collection;

and the open probes `/health` and `/ready` with Prometheus' `/metrics`. Errors are RFC 9457 problem
details whose `detail` is the message the CLI prints for the same error; never a stack trace.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route

from core.errors import CollectionNotFoundError, DocumentNotFoundError, RagError, StoreError
from core.stages import AnswerStream
from llm.errors import ProviderError
from rag.auth import ApiKeys, is_loopback, presented_key
from rag.jobs import IngestJob, IngestJobs, UploadedFile
from rag.metrics import CONTENT_TYPE, HttpMetricsMiddleware, ServingMetrics
from rag.schemas import (
    CHUNKERS,
    COLLECTION_NAME_SCHEMA,
    AnswerOut,
    AskIn,
    ChatChoice,
    ChatCitation,
    ChatCompletionIn,
    ChatCompletionOut,
    ChatReply,
    ChatUsage,
    CollectionCreatedOut,
    CollectionDeletedOut,
    CollectionIn,
    CollectionOut,
    CollectionsOut,
    DocumentDeletedOut,
    DocumentOut,
    DocumentsDeletedOut,
    DocumentsOut,
    FeedbackIn,
    FeedbackOut,
    FileResultOut,
    HealthOut,
    JobOut,
    ModelOut,
    ModelsOut,
    Problem,
    ReadyOut,
)
from rag.service import RagService
from rag.uploads import refusal, safe_source
from store.base import check_collection_name

logger = logging.getLogger(__name__)

ServiceOf = Callable[[], RagService]
Collection = Annotated[str, Path(description="a collection: 1 to 64 letters, digits, '-' or '_'",
                                 json_schema_extra=COLLECTION_NAME_SCHEMA)]
PROBLEM_JSON = "application/problem+json"
LOCAL_ONLY = ("This server has no API keys (RAG_API_KEYS), so its API answers requests from this machine "
              "only: set RAG_API_KEYS to call it from elsewhere.")
NEEDS_KEY = ("Missing or unknown API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
             "(the server's keys are set with RAG_API_KEYS).")
MAX_FILES = 1000


class ApiProblem(Exception):
    """An error answered as problem details with this status."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, openai: bool = False,
            **extra: Any) -> JSONResponse:
    """A problem-details response; `openai`: also OpenAI's {"error": {...}} member, which its clients read."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, **extra).model_dump(
        mode="json", exclude_none=True)
    if openai:
        body["error"] = {"message": detail, "type": "invalid_request_error" if status < 500 else "server_error",
                         "code": status}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(exc: BaseException) -> int:
    """The HTTP status of an error the service raised on purpose (or a ValueError of bad input)."""
    if isinstance(exc, CollectionNotFoundError | DocumentNotFoundError):
        return 404
    if isinstance(exc, StoreError):
        return 503  # the store cannot be opened or reached: busy, down, not ready
    if isinstance(exc, ProviderError):
        return 502
    return 422


def _errors_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        errors.append({"field": where, "message": error.get("msg", "")})
    text = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    return f"Bad input: {text}" if text else "Bad input.", errors


def _install_error_handlers(app: FastAPI, *, openai: bool = False) -> None:
    async def on_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, headers=exc.headers, openai=openai, **exc.extra)

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _errors_detail(exc)
        return problem(422, detail, openai=openai, errors=errors)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None), openai=openai)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        return problem(status_for(exc), str(exc), openai=openai)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, f"Something went wrong ({type(exc).__name__}); the server log has the details.",
                       openai=openai)

    app.add_exception_handler(ApiProblem, on_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(RagError, on_service_error)
    app.add_exception_handler(ValueError, on_service_error)
    app.add_exception_handler(Exception, on_unexpected)


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route may give."""
    return {status: {"model": Problem, "description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


def key_guard(keys: ApiKeys) -> Callable[..., None]:
    """A dependency that lets a request through with one of `keys`; with no keys, only from this machine."""
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (a key of RAG_API_KEYS)")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY (a key of RAG_API_KEYS)")

    def guard(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer),
              api_key: str | None = Security(header)) -> None:
        if not keys.enabled:
            if is_loopback(request.client.host if request.client else None):
                return
            raise ApiProblem(403, LOCAL_ONLY)
        if not keys.allows(api_key or (credentials.credentials if credentials else None)):
            raise ApiProblem(401, NEEDS_KEY, headers={"WWW-Authenticate": "Bearer"})

    return guard


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _started(stream: AnswerStream) -> tuple[str | None, Iterator[str]]:
    """The first piece of a stream (None when it has none) and the rest; errors before any output raise here,
    so they become the response's status."""
    pieces = iter(stream)
    return next(pieces, None), pieces


def _searched(stream: AnswerStream) -> dict[str, str]:
    """What the answer searched for: the follow-up made whole, and that without its instructions."""
    trace = stream.trace
    return {"standalone_question": trace.standalone_question, "searched": trace.searched} if trace else {}


def create_api(service_of: ServiceOf, *, keys: ApiKeys, jobs: IngestJobs, metrics: ServingMetrics) -> FastAPI:
    """The /api/v1 app."""
    api = FastAPI(
        title="rag-qa API",
        version="1",
        summary="Collections, documents and cited answers from your own documents.",
        description="Errors are problem details (application/problem+json) whose `detail` is the message the "
                    "`rag` command prints. Keys: `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        dependencies=[Depends(key_guard(keys))],
        responses=_problems(400, 401, 403, 422, 503),
    )
    _install_error_handlers(api)
    api.add_middleware(HttpMetricsMiddleware, metrics=metrics, prefix="/api/v1")
    _document_probes(api)

    @api.get("/collections", response_model=CollectionsOut, tags=["collections"])
    def list_collections() -> CollectionsOut:
        """Collections with their document and chunk counts (`rag collections list`)."""
        infos = service_of().list_collections()
        return CollectionsOut(collections=[CollectionOut(name=i.name, documents=i.documents, chunks=i.chunks)
                                           for i in infos])

    @api.post("/collections", response_model=CollectionCreatedOut, status_code=201, tags=["collections"])
    def create_collection(body: CollectionIn) -> CollectionCreatedOut:
        """Create an empty collection (`rag collections create NAME`)."""
        service_of().create_collection(body.name)
        return CollectionCreatedOut(created=body.name)

    @api.get("/collections/{collection}", response_model=CollectionOut, tags=["collections"],
             responses=_problems(404))
    def get_collection(collection: Collection) -> CollectionOut:
        """One collection with its document and chunk counts."""
        info = service_of().get_collection(collection)
        return CollectionOut(name=info.name, documents=info.documents, chunks=info.chunks)

    @api.delete("/collections/{collection}", response_model=CollectionDeletedOut, tags=["collections"],
                responses=_problems(404))
    def delete_collection(collection: Collection) -> CollectionDeletedOut:
        """Delete a collection and everything in it (`rag collections delete NAME`)."""
        service_of().delete_collection(collection)
        return CollectionDeletedOut(deleted=collection)

    @api.get("/collections/{collection}/documents", response_model=DocumentsOut, tags=["documents"],
             responses=_problems(404))
    def list_documents(collection: Collection) -> DocumentsOut:
        """The documents of a collection (`rag docs list`)."""
        docs = service_of().list_documents(collection)
        return DocumentsOut(collection=collection, documents=[DocumentOut.from_info(d) for d in docs])

    @api.delete("/collections/{collection}/documents", response_model=DocumentsDeletedOut, tags=["documents"],
                responses=_problems(404))
    def delete_all_documents(collection: Collection) -> DocumentsDeletedOut:
        """Delete every document of a collection and all their chunks; the collection stays, empty."""
        names, chunks = service_of().delete_all_documents(collection)
        return DocumentsDeletedOut(collection=collection, deleted_documents=names, deleted_chunks=chunks)

    @api.get("/collections/{collection}/documents/{name:path}", response_model=DocumentOut, tags=["documents"],
             responses=_problems(404))
    def get_document(collection: Collection, name: str) -> DocumentOut:
        """One document (by name, as listed, file name or id): its pages, chunks, chunker and when it came in."""
        return DocumentOut.from_info(service_of().get_document(collection, name))

    @api.delete("/collections/{collection}/documents/{name:path}", response_model=DocumentDeletedOut,
                tags=["documents"], responses=_problems(404))
    def delete_document(collection: Collection, name: str) -> DocumentDeletedOut:
        """Delete one document (by name, as listed, or id) and all its chunks (`rag docs delete`)."""
        deleted = service_of().delete_document(collection, name)
        return DocumentDeletedOut(collection=collection, document=name, deleted_chunks=deleted)

    @api.post("/collections/{collection}/documents", response_model=JobOut, status_code=202, tags=["documents"],
              responses=_problems(413, 415))
    def upload_documents(
        request: Request,
        collection: Collection,
        files: list[UploadFile] = File(description="the files; a name may hold sub-folders (a/b.pdf)"),
        chunker: str | None = Form(default=None, description=" | ".join(CHUNKERS),
                                   json_schema_extra={"enum": list(CHUNKERS)}),
        chunk_size: int | None = Form(default=None, description="tokens per chunk"),
        chunk_overlap: int | None = Form(default=None, description="tokens shared by neighbouring chunks"),
        password: str | None = Form(default=None, description="for encrypted PDFs"),
    ) -> JSONResponse:
        """Upload files into a collection (created when missing) and ingest them in the background, with
        the Documents page's limits; `GET /api/v1/jobs/{id}` tells the progress and every file's result.
        413 / 415 when none of the files can be taken (too large / a type no reader takes)."""
        service = service_of()
        check_collection_name(collection)
        options = service.chunking_options(chunker, chunk_size, chunk_overlap)
        if len(files) > MAX_FILES:
            raise ApiProblem(413, f"At most {MAX_FILES} files in one upload (got {len(files)}).")
        job_id, staging = jobs.new_staging_folder()
        uploaded = []
        for index, upload in enumerate(files):
            source = safe_source(upload.filename or "")
            if source is None:
                uploaded.append(UploadedFile(upload.filename or "", refused="no file name"))
                continue
            refused = refusal(source, upload.size or 0, service.settings)
            if refused:
                uploaded.append(UploadedFile(source, refused=refused))
                continue
            staged = staging / str(index) / FilePath(source).name
            staged.parent.mkdir(parents=True, exist_ok=True)
            with staged.open("wb") as target:
                shutil.copyfileobj(upload.file, target)
            uploaded.append(UploadedFile(source, staged=staged))
        if not any(f.staged for f in uploaded):
            shutil.rmtree(staging, ignore_errors=True)
            rows = [FileResultOut(path=f.source, status="failed", error=f.refused) for f in uploaded]
            too_large = any("too large" in (f.refused or "") for f in uploaded)
            shown = "; ".join(f"{f.source}: {f.refused}" for f in uploaded)
            raise ApiProblem(413 if too_large else 415, f"None of the files can be ingested: {shown}",
                             files=[r.model_dump() for r in rows])
        job = jobs.submit(IngestJob(job_id, collection, uploaded, options, password or None), service_of)
        location = f"{request.scope.get('root_path', '')}/jobs/{job.id}"
        return JSONResponse(job.view().model_dump(mode="json"), status_code=202, headers={"Location": location})

    @api.get("/jobs/{job_id}", response_model=JobOut, tags=["documents"], responses=_problems(404))
    def get_job(job_id: str) -> JobOut:
        """An upload's ingestion: queued, running (which file), done (every file's result), failed (why), or
        interrupted (the server stopped before it finished). Jobs outlive a restart of the server."""
        job = jobs.get(job_id)
        if job is None:
            raise ApiProblem(404, f"No job {job_id!r}: the server keeps the last {jobs.keep} jobs.")
        return job

    @api.post("/collections/{collection}/ask", response_model=AnswerOut, tags=["answers"],
              responses={**_problems(404, 502),
                         200: {"description": "The answer; with `Accept: text/event-stream`, `token` events "
                                              "({\"text\"}) then one `answer` event (the JSON answer)",
                               "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    def ask(collection: Collection, body: AskIn, request: Request) -> Any:
        """A checked answer with numbered citations (`rag ask`)."""
        stream = service_of().ask_stream(body.question, collection, top_k=body.top_k, reranker=body.reranker,
                                         answerer=body.answerer, documents=body.documents, history=body.previous,
                                         session=body.session, source="api")
        if "text/event-stream" not in request.headers.get("accept", ""):
            answer = stream.result()
            return AnswerOut.from_answer(answer, **_searched(stream))
        first, rest = _started(stream)

        def events() -> Iterator[str]:
            try:
                if first is not None:
                    yield _sse("token", {"text": first})
                for piece in rest:
                    yield _sse("token", {"text": piece})
                yield _sse("answer", AnswerOut.from_answer(stream.result(), **_searched(stream)).model_dump())
            except Exception as exc:  # the status is sent already: the error becomes the last event
                status = status_for(exc) if isinstance(exc, RagError | ValueError) else 500
                if status == 500:
                    logger.error("answer stream failed", exc_info=exc)
                detail = str(exc) if status != 500 else f"Something went wrong ({type(exc).__name__})."
                yield _sse("error", Problem(title=HTTPStatus(status).phrase, status=status,
                                            detail=detail).model_dump(exclude_none=True))

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.post("/feedback", response_model=FeedbackOut, tags=["answers"], responses=_problems(404))
    def feedback(body: FeedbackIn) -> FeedbackOut:
        """Helpful or not, for an answer's request_id (shown on the Monitoring page)."""
        if not service_of().record_feedback(body.request_id, body.helpful):
            raise ApiProblem(404, f"No request {body.request_id!r}: send the request_id of an answer.")
        return FeedbackOut(request_id=body.request_id, helpful=body.helpful)

    return api


def create_openai_api(service_of: ServiceOf, *, keys: ApiKeys, metrics: ServingMetrics) -> FastAPI:
    """The /v1 app: OpenAI's chat completions and model list; a model is a collection."""
    api = FastAPI(
        title="rag-qa OpenAI-compatible API",
        version="1",
        summary="Chat completions answered from a collection (model = collection), citations in the message.",
        dependencies=[Depends(key_guard(keys))],
        responses=_problems(400, 401, 403, 422, 503),
    )
    _install_error_handlers(api, openai=True)
    api.add_middleware(HttpMetricsMiddleware, metrics=metrics, prefix="/v1")

    @api.get("/models", response_model=ModelsOut, tags=["openai"])
    def models() -> ModelsOut:
        """The collections, as models."""
        return ModelsOut(data=[ModelOut(id=c.name) for c in service_of().list_collections()])

    @api.post("/chat/completions", response_model=ChatCompletionOut, tags=["openai"],
              responses={**_problems(404, 502),
                         200: {"description": "The completion; with `stream: true`, chat.completion.chunk "
                                              "events, then `data: [DONE]`",
                               "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    def chat_completions(body: ChatCompletionIn) -> Any:
        """The last user message is the question, the earlier ones the conversation."""
        asked = [m.text() for m in body.messages if m.role == "user" and m.text().strip()]
        if not asked:
            raise ApiProblem(422, "The messages hold no user message to answer.")
        stream = service_of().ask_stream(asked[-1], body.model, history=asked[:-1] or None, session=body.user,
                                         source="api")
        created = int(time.time())
        if not body.stream:
            answer = stream.result()
            return ChatCompletionOut(
                id=f"chatcmpl-{answer.request_id}", created=created, model=body.model,
                choices=[ChatChoice(message=ChatReply(content=answer.text + _sources_text(answer),
                                                      citations=_chat_citations(answer)))],
                usage=ChatUsage(prompt_tokens=answer.usage.input_tokens,
                                completion_tokens=answer.usage.output_tokens,
                                total_tokens=answer.usage.input_tokens + answer.usage.output_tokens))
        first, rest = _started(stream)
        chunk_id = f"chatcmpl-{stream.trace.request_id if stream.trace else created}"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": body.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            try:
                yield chunk({"role": "assistant", "content": first or ""})
                for piece in rest:
                    yield chunk({"content": piece})
                answer = stream.result()
                sources = _sources_text(answer)
                if sources:
                    yield chunk({"content": sources})
                yield chunk({}, "stop", citations=[c.model_dump() for c in _chat_citations(answer)])
            except Exception as exc:  # the status is sent already: OpenAI's error chunk ends the stream
                logger.error("chat completion stream failed", exc_info=exc)
                message = str(exc) if isinstance(exc, RagError | ValueError) else type(exc).__name__
                yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return api


def _chat_citations(answer: Any) -> list[ChatCitation]:
    return [ChatCitation(n=c.n, document=c.document, page=c.page, score=c.score) for c in answer.citations]


def _sources_text(answer: Any) -> str:
    """The citations under the answer's text, as the chat message carries them."""
    if not answer.citations:
        return ""
    return "\n\nSources:\n" + "\n".join(f"[{c.n}] {c.document}, page {c.page}" for c in answer.citations)


# The probes and /metrics are served at the server's root (rag/server.py), beside the API: their
# entries in the API's OpenAPI document say so with a server of their own.
PROBES_SERVER = [{"url": "/", "description": "the server's root: the probes and metrics sit outside /api/v1"}]


def probe_docs() -> APIRouter:
    """The OpenAPI entries of `/health`, `/ready` and `/metrics` (probe_routes serves them)."""
    router = APIRouter(tags=["probes"])

    def documented() -> None:  # the entries only: probe_routes answers these paths
        return None

    router.add_api_route("/health", documented, methods=["GET"], response_model=HealthOut, operation_id="health",
                         summary="Liveness: the process is up", description="Always open (no key); the container's "
                         "health check and Kubernetes' liveness probe call it. `instance` tells one server "
                         "process from another.")
    router.add_api_route("/ready", documented, methods=["GET"], response_model=ReadyOut, operation_id="ready",
                         summary="Readiness: the store is open and the embedding model loaded",
                         description="Always open (no key); Kubernetes' readiness probe. 503 with the reason "
                         "while starting, or when the store cannot be opened.", responses=_problems(503))
    router.add_api_route("/metrics", documented, methods=["GET"], response_class=PlainTextResponse,
                         operation_id="metrics",
                         summary="Prometheus metrics", description="Prometheus' text format: API requests and "
                         "latency, answer stages, errors, tokens, cost, abstentions, ingestion, and the figures of "
                         "`rag monitor --prometheus` (rag_monitor_*). Keys of RAG_METRICS_KEYS when set.",
                         responses={200: {"description": "Prometheus text format",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                                    **_problems(401)})
    return router


def _document_probes(api: FastAPI) -> None:
    """Add the probes' entries, with their own server (the root), to the API's OpenAPI document."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = build()
            probes = get_openapi(title="probes", version="1", routes=probe_docs().routes)
            for path, item in probes["paths"].items():
                schema["paths"][path] = {**item, "servers": PROBES_SERVER}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(probes.get("components", {}).get("schemas", {}))
        return api.openapi_schema  # type: ignore[return-value]

    api.openapi = openapi  # type: ignore[method-assign]


class Readiness:
    """Whether the process can answer: the store open and the embedding model loaded."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "Starting: opening the store and loading the embedding model."

    def set_ready(self) -> None:
        self.ready, self.reason = True, ""

    def set_failed(self, reason: str) -> None:
        self.ready, self.reason = False, reason


def probe_routes(*, instance: str, readiness: Readiness, metrics: ServingMetrics, metrics_keys: ApiKeys,
                 service_of: ServiceOf) -> list[BaseRoute]:
    """`/health` (the process is up), `/ready` (it can answer) and `/metrics` (Prometheus text)."""

    async def health(request: Request) -> Response:
        return JSONResponse(HealthOut(instance=instance).model_dump())

    async def ready(request: Request) -> Response:
        if not readiness.ready:
            return problem(503, readiness.reason)
        try:  # still reachable: a Qdrant server can go away after the start (Edge: a look at its folder)
            await run_in_threadpool(service_of().store.list_collections)
        except RagError as exc:
            return problem(503, f"Not ready: {exc}")
        return JSONResponse(ReadyOut().model_dump())

    def metrics_text(request: Request) -> Response:
        if metrics_keys.enabled and not metrics_keys.allows(
                presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))):
            return problem(401, "Missing or unknown key for /metrics (set with RAG_METRICS_KEYS).",
                           headers={"WWW-Authenticate": "Bearer"})
        if readiness.ready:
            try:
                metrics.refresh(service_of())
            except Exception:  # the metrics page must answer even when the request log cannot be read
                logger.exception("could not read the request log for /metrics")
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"])]
