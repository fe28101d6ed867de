"""What the API sends and takes, and what `rag ... --json` prints: one set of models, the same field names.

The CLI builds its JSON from these models (rag/cli.py) and the REST API declares them in its OpenAPI
schema (rag/api.py); rag/client.py reads them back into the service's own types.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.trace import STAGES
from core.types import Answer, Citation, Usage
from ingest.pipeline import DocumentInfo, FileResult, IngestReport

# Documented here, checked by the store with its own message (store/base.py: check_collection_name), so an
# API client and the CLI are told the same words.
COLLECTION_NAME_SCHEMA: dict[str, Any] = {"pattern": "^[A-Za-z0-9_-]{1,64}$", "examples": ["samples", "my-docs"]}
CHUNKERS = ("fixed", "sentence", "recursive", "semantic")


class Problem(BaseModel):
    """An error as RFC 9457 problem details; `detail` is the message the CLI prints for the same error."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    files: list[FileResultOut] | None = Field(
        default=None, description="Upload: every file's result, when none of the files could be taken")
    errors: list[dict[str, Any]] | None = Field(default=None, description="Bad input: each field's problem")


class FileResultOut(BaseModel):
    """What happened to one file (`path`: as given to `rag ingest`, or the name it was uploaded with)."""

    path: str
    status: Literal["ingested", "skipped", "failed"]
    pages: int = 0
    chunks: int = 0
    error: str | None = None

    @classmethod
    def from_result(cls, result: FileResult, path: str | None = None) -> FileResultOut:
        return cls(path=path if path is not None else result.path, status=result.status, pages=result.pages,
                   chunks=result.chunks, error=result.error)


class IngestReportOut(BaseModel):
    """`rag ingest --json`; the report of a finished upload job."""

    files: list[FileResultOut]
    chunks_added: int
    seconds: float

    @classmethod
    def from_report(cls, report: IngestReport) -> IngestReportOut:
        return cls.model_validate(report.to_dict())

    def to_report(self, paths: list[str] | None = None) -> IngestReport:
        """The service's IngestReport, with each file's path replaced by `paths[i]` when given."""
        files = [FileResult(path=paths[i] if paths else f.path, status=f.status, pages=f.pages, chunks=f.chunks,
                            error=f.error) for i, f in enumerate(self.files)]
        return IngestReport(files=files, chunks_added=self.chunks_added, seconds=self.seconds)


class CitationOut(BaseModel):
    n: int
    document: str
    page: int
    text: str
    score: float
    supporting_sentence: str = ""
    support: float = 0.0


class UsageOut(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class AnswerOut(BaseModel):
    """`rag ask --json`; the answer of `POST /api/v1/collections/{collection}/ask`."""

    answer: str
    abstained: bool
    grounded: bool
    citations: list[CitationOut]
    unsupported_sentences: list[str]
    timings_ms: dict[str, float] = Field(description="per stage: " + ", ".join(STAGES))
    usage: UsageOut
    cost_usd: float
    provider: str
    reranker: str
    cache_hit: bool
    warnings: list[str]
    standalone_question: str = Field(default="", description="what was searched for (a follow-up made whole)")
    searched: str = Field(default="", description="what search read: the standalone question without its "
                                                  "instructions to the answerer, fiscal years as years")
    request_id: str = Field(default="", description="for feedback: POST /api/v1/feedback")

    @classmethod
    def from_answer(cls, answer: Answer, standalone_question: str = "", searched: str = "") -> AnswerOut:
        return cls(
            answer=answer.text,
            abstained=answer.abstained,
            grounded=answer.grounded,
            citations=[CitationOut(n=c.n, document=c.document, page=c.page, text=c.text, score=c.score,
                                   supporting_sentence=c.supporting_sentence, support=c.support)
                       for c in answer.citations],
            unsupported_sentences=list(answer.unsupported_sentences),
            timings_ms={s: round(answer.timings_ms.get(s, 0.0), 2) for s in STAGES},
            usage=UsageOut(input_tokens=answer.usage.input_tokens, output_tokens=answer.usage.output_tokens),
            cost_usd=answer.cost_usd,
            provider=answer.provider,
            reranker=answer.reranker,
            cache_hit=answer.cache_hit,
            warnings=list(answer.warnings),
            standalone_question=standalone_question,
            searched=searched,
            request_id=answer.request_id,
        )

    def to_answer(self) -> Answer:
        """The service's Answer (citations without their chunk ids, which the API does not send)."""
        return Answer(
            text=self.answer,
            citations=[Citation(n=c.n, chunk_id="", document=c.document, page=c.page, text=c.text, score=c.score,
                                supporting_sentence=c.supporting_sentence, support=c.support)
                       for c in self.citations],
            abstained=self.abstained,
            grounded=self.grounded,
            unsupported_sentences=list(self.unsupported_sentences),
            usage=Usage(self.usage.input_tokens, self.usage.output_tokens),
            cost_usd=self.cost_usd,
            provider=self.provider,
            reranker=self.reranker,
            cache_hit=self.cache_hit,
            timings_ms=dict(self.timings_ms),
            warnings=list(self.warnings),
            request_id=self.request_id,
        )


class AskIn(BaseModel):
    """A question (the options of `rag ask`; unset ones take the server's settings)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=4000, description="not blank", json_schema_extra={"pattern": "\\S"})
    top_k: int | None = Field(default=None, le=100, description="sources to answer from",
                              json_schema_extra={"minimum": 1})
    reranker: str | None = Field(default=None, max_length=200)
    answerer: str | None = Field(default=None, max_length=200)
    documents: list[str] | None = Field(default=None, max_length=100,
                                        description="ask only these documents (names or ids)")
    previous: list[str] | None = Field(default=None, max_length=20,
                                       description="the conversation's earlier questions, oldest first")
    session: str | None = Field(default=None, max_length=200,
                                description="who asks (a user or conversation id): with A/B variants on "
                                            "(RAG_AB), the same session always gets the same variant")


class DocumentOut(BaseModel):
    """One stored document (`rag docs list --json`)."""

    document_id: str
    source: str
    file_name: str
    file_type: str
    pages: int
    chunks: int
    chunker: str
    chunker_settings: dict[str, Any]
    ingested_at: str
    sha256: str

    @classmethod
    def from_info(cls, info: DocumentInfo) -> DocumentOut:
        return cls.model_validate(asdict(info))

    def to_info(self) -> DocumentInfo:
        return DocumentInfo(**self.model_dump())


class DocumentsOut(BaseModel):
    collection: str
    documents: list[DocumentOut]


class DocumentDeletedOut(BaseModel):
    collection: str
    document: str
    deleted_chunks: int


class DocumentsDeletedOut(BaseModel):
    """Every document of a collection deleted; the collection stays, empty."""

    collection: str
    deleted_documents: list[str] = Field(description="their names, as listed")
    deleted_chunks: int


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int


class CollectionsOut(BaseModel):
    collections: list[CollectionOut]


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1 to 64 letters, digits, '-' or '_'", json_schema_extra=COLLECTION_NAME_SCHEMA)


class CollectionCreatedOut(BaseModel):
    created: str


class CollectionDeletedOut(BaseModel):
    deleted: str


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(max_length=100, description="an answer's request_id")
    helpful: bool


class FeedbackOut(BaseModel):
    request_id: str
    helpful: bool


class JobOut(BaseModel):
    """An upload's ingestion, running in the background."""

    id: str
    collection: str
    status: Literal["queued", "running", "done", "failed", "interrupted"] = Field(
        description="interrupted: the server stopped before the job finished; upload the files again")
    files_total: int
    files_done: int
    current: str | None = Field(default=None, description="the file being ingested now")
    report: IngestReportOut | None = Field(default=None, description="when done: every file's result")
    error: str | None = Field(default=None, description="when failed: why")
    created_at: str
    finished_at: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    instance: str = Field(description="this server process, so a client can tell it from another one")


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"


# OpenAI-compatible chat completions (model = collection)
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(max_length=50)
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionIn(BaseModel):
    """OpenAI's chat completion request; `model` names the collection. Other OpenAI fields are accepted
    and ignored (the answerer of the server's settings answers)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(max_length=200, description="the collection to ask")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    user: str | None = Field(default=None, max_length=200,
                             description="OpenAI's end-user id: the A/B session (the same user, the same variant)")


class ChatCitation(BaseModel):
    n: int
    document: str
    page: int
    score: float


class ChatReply(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    citations: list[ChatCitation] = Field(default_factory=list, description="the [n] sources of the content")


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatReply
    finish_reason: Literal["stop"] = "stop"


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-qa"


class ModelsOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


Problem.model_rebuild()
