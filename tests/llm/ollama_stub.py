"""A local HTTP server that speaks Ollama's OpenAI-compatible API, for tests.

Routes as Ollama serves them: GET / ("Ollama is running"), GET /v1/models (the pulled models),
POST /v1/chat/completions (a JSON reply, or SSE chunks `data: {...}` ending in `data: [DONE]` when
`stream` is set), and a 404 `model "x" not found, try pulling it first` for a model that is not pulled.
Error bodies take the shape Ollama's OpenAI layer sends ({"error": {"message", "type", ...}}), or
Ollama's native one ({"error": "..."}) with `native_errors`. With `any_model` it stands in for
llama.cpp's `llama-server`, which answers whatever model is named.

Its model reads: it answers with the source sentence that shares the most words with the question,
cited by the source's number, in JSON when asked for JSON (a follow-up to rewrite comes back as it
is); scripted `replies` come first. Every request
is recorded. It listens on 127.0.0.1 only; stop() closes the port, so a later request is refused.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOT_FOUND_TEXT = "Not found in your documents."
SOURCE = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Seen:
    """One request as the stub received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def content_words(text: str) -> set[str]:
    """Words of four letters or more, cut to five so that "produce" meets "produces"."""
    return {w[:5] for w in WORD.findall(text.lower()) if len(w) > 3}


def read_sources(body: dict[str, Any]) -> tuple[str, list[tuple[int, str]]]:
    """The question and the numbered sources of the last user message."""
    user = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    prompt = user[-1] if user else ""
    question = prompt.rsplit("Question:", 1)[-1].strip()
    return question, [(int(n), text) for n, text in SOURCE.findall(prompt)]


def reader_reply(body: dict[str, Any]) -> str:
    """What the stub's model says: the best-overlapping source sentence with its [n] marker; asked to
    rewrite a follow-up ("Last question: ..."), the question as it is."""
    question, sources = read_sources(body)
    rewrite = re.search(r"Last question: (.+)", question)
    if not sources and rewrite:
        return rewrite.group(1).strip()
    wanted = content_words(question)
    best: tuple[int, int, str] | None = None
    for n, text in sources:
        for sentence in SENTENCE_END.split(text.strip()):
            overlap = len(wanted & content_words(sentence))
            if overlap and (best is None or overlap > best[0]):
                best = (overlap, n, sentence.strip())
    if best is None:
        return NOT_FOUND_TEXT
    return f"{best[2].rstrip('.')} [{best[1]}]."


def wants_json(body: dict[str, Any]) -> bool:
    system = " ".join(m["content"] for m in body.get("messages", []) if m.get("role") == "system")
    return (body.get("response_format") or {}).get("type") == "json_object" or '"citations"' in system


def pieces_of(text: str, count: int = 4) -> list[str]:
    """The reply cut at word boundaries into about `count` pieces (joined they give the text back)."""
    words = re.split(r"(?<= )", text)
    size = max(1, -(-len(words) // count))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


class OllamaStub:
    """Ollama on 127.0.0.1 at a free port: start() before use, stop() after."""

    def __init__(
        self, models: tuple[str, ...] = ("tiny",), any_model: bool = False, native_errors: bool = False
    ) -> None:
        self.models = list(models)
        self.any_model = any_model
        self.native_errors = native_errors
        self.replies: deque[str] = deque()  # scripted model replies, used before the reader's
        self.delay_s = 0.0  # seconds before each chat reply (a slow model)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, as OLLAMA_HOST would name it."""
        assert self._server is not None, "start() the stub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OllamaStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so no kept-alive connection outlives stop().
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                stub._serve(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                stub._serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: from now on a connection is refused, as when Ollama is not running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OllamaStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw -------------------------------------------------------------------------
    def chats(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests, in order."""
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    # -- serving -----------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?")[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append(Seen(method, path, {k.lower(): v for k, v in handler.headers.items()}, body))
        try:
            if method == "GET" and path == "/":
                self._send(handler, 200, b"Ollama is running", "text/plain; charset=utf-8")
            elif method == "GET" and path == "/v1/models":
                data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "library"}
                        for m in self.models]
                self._json(handler, 200, {"object": "list", "data": data})
            elif method == "POST" and path == "/v1/chat/completions":
                self._chat(handler, body)
            else:
                self._send(handler, 404, b"404 page not found", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _chat(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        if not self.any_model and model not in self.models:
            message = f'model "{model}" not found, try pulling it first'
            error: Any = message if self.native_errors else {
                "message": message, "type": "api_error", "param": None, "code": None}
            self._json(handler, 404, {"error": error})
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            text = self.replies.popleft() if self.replies else None
        if text is None:
            text = reader_reply(body)
            if wants_json(body):
                numbers = [int(n) for n in re.findall(r"\[(\d+)\]", text)]
                text = json.dumps({"answer": text, "citations": numbers})
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                 "total_tokens": prompt_tokens + len(text.split())}
        head = {"id": "chatcmpl-42", "created": int(time.time()), "model": model, "system_fingerprint": "fp_ollama"}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            self._json(handler, 200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        chunk = {**head, "object": "chat.completion.chunk"}
        events = [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                   "finish_reason": None}]}
            for piece in pieces_of(text)
        ]
        events.append({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        for event in events:
            handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            handler.wfile.flush()
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()

    def _json(self, handler: BaseHTTPRequestHandler, code: int, payload: Any) -> None:
        self._send(handler, code, json.dumps(payload).encode(), "application/json; charset=utf-8")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, data: bytes, kind: str) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
