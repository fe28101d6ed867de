"""A local HTTP server that speaks the OpenAI, Cohere and Anthropic APIs, with scripted failures.

Each request to a route takes the next scripted `Reply` for that route (or the route's default)
and is recorded (path, headers, JSON body), so tests can count requests and read what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES = {
    "/v1/chat/completions": "openai",
    "/v2/chat": "cohere",
    "/v2/rerank": "rerank",
    "/v1/messages": "anthropic",
}


@dataclass
class Reply:
    """One scripted reply. kind: ok | status | sleep | malformed."""

    kind: str = "ok"
    text: str = '{"answer": "The sky is blue [1].", "citations": [1]}'
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    citations: list[tuple[int, int, list[str]]] = field(
        default_factory=list
    )  # cohere: start, end, ids
    usage: tuple[int, int] = (1200, 300)
    pieces: int = 4
    error: str = ""  # the error message of a status reply


@dataclass
class Recorded:
    route: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def ok(text: str, **kwargs: Any) -> Reply:
    """A successful reply carrying `text`."""
    return Reply(kind="ok", text=text, **kwargs)


def status(code: int, retry_after: str | None = None, error: str = "") -> Reply:
    """An HTTP error reply, with Retry-After when given."""
    headers = {"Retry-After": retry_after} if retry_after else {}
    return Reply(kind="status", status=code, headers=headers, error=error)


def sleep(seconds: float) -> Reply:
    """A reply that comes after `seconds` (longer than the client's timeout)."""
    return Reply(kind="sleep", seconds=seconds)


def malformed() -> Reply:
    """HTTP 200 with a body that is not JSON."""
    return Reply(kind="malformed")


def split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


class VendorStub:
    """The stub server: start() on 127.0.0.1 at a random port, stop() when done."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.defaults: dict[str, Reply] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------
    def queue(self, route: str, *replies: Reply) -> None:
        """Replies for the next requests to `route`, in order."""
        self.scripts[route].extend(replies)

    def default(self, route: str, reply: Reply) -> None:
        """The reply once the queue of `route` is empty."""
        self.defaults[route] = reply

    def count(self, route: str) -> int:
        return sum(1 for r in self.requests if r.route == route)

    def bodies(self, route: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.route == route]

    def order(self) -> list[str]:
        return [r.route for r in self.requests]

    def _next(self, route: str) -> Reply:
        with self._lock:
            if self.scripts[route]:
                return self.scripts[route].popleft()
            return self.defaults.get(route, Reply())

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> VendorStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                stub._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- serving -----------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        route = ROUTES.get(path, "unknown")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append(
                Recorded(route, path, {k.lower(): v for k, v in handler.headers.items()}, body)
            )
        reply = self._next(route)
        try:
            if reply.kind == "sleep":
                time.sleep(reply.seconds)
                reply = Reply()
            if reply.kind == "status":
                messages = {401: "invalid api token", 403: "forbidden", 429: "too many requests"}
                message = {reply.status: reply.error} if reply.error else messages
                payload = {
                    "error": {
                        "message": message.get(reply.status, "server error"),
                        "type": "error",
                    },
                    "message": message.get(reply.status, "server error"),
                }
                self._send_json(handler, payload, reply.status, reply.headers)
            elif reply.kind == "malformed":
                self._send(handler, b'{"id": "x", "choices": [', 200, "application/json", {})
            elif body.get("stream"):
                self._send_sse(handler, route, body, reply)
            else:
                self._send_json(handler, self._payload(route, body, reply), 200, reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, data: bytes, code: int, kind: str, headers: dict[str, str]
    ) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _send_json(
        self, handler: BaseHTTPRequestHandler, payload: Any, code: int, headers: dict[str, str]
    ) -> None:
        self._send(handler, json.dumps(payload).encode(), code, "application/json", headers)

    @staticmethod
    def _payload(route: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        model = body.get("model", "stub")
        tokens_in, tokens_out = reply.usage
        if route == "openai":
            return {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
            }
        if route == "anthropic":
            return {
                "id": "msg_stub",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
            }
        if route == "cohere":
            documents = {str(d.get("id")): d.get("data", {}) for d in body.get("documents", [])}
            citations = [
                {
                    "start": start,
                    "end": end,
                    "text": reply.text[start:end],
                    "type": "TEXT_CONTENT",
                    "sources": [
                        {"type": "document", "id": i, "document": documents.get(i, {})} for i in ids
                    ],
                }
                for start, end, ids in reply.citations
            ]
            return {
                "id": "cohere-stub",
                "finish_reason": "COMPLETE",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": reply.text}],
                    "citations": citations,
                },
                "usage": {
                    "billed_units": {"input_tokens": tokens_in, "output_tokens": tokens_out},
                    "tokens": {"input_tokens": tokens_in, "output_tokens": tokens_out},
                },
            }
        if route == "rerank":
            query = set(str(body.get("query", "")).lower().split())
            scores = []
            for index, doc in enumerate(body.get("documents", [])):
                words = set(str(doc).lower().split())
                scores.append((len(query & words) / (len(query) or 1), index))
            scores.sort(key=lambda s: (-s[0], s[1]))
            top = scores[: body.get("top_n") or len(scores)]
            return {
                "id": "rerank-stub",
                "results": [{"index": i, "relevance_score": s} for s, i in top],
                "meta": {"billed_units": {"search_units": 1}},
            }
        return {"error": "unknown route"}

    def _send_sse(
        self, handler: BaseHTTPRequestHandler, route: str, body: dict[str, Any], reply: Reply
    ) -> None:
        model = body.get("model", "stub")
        tokens_in, tokens_out = reply.usage
        events: list[tuple[str | None, Any]] = []
        pieces = split(reply.text, reply.pieces)
        if route == "openai":
            for piece in pieces:
                events.append(
                    (
                        None,
                        {
                            "id": "c",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": model,
                            "choices": [
                                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                            ],
                        },
                    )
                )
            events.append(
                (
                    None,
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": tokens_in,
                            "completion_tokens": tokens_out,
                            "total_tokens": tokens_in + tokens_out,
                        },
                    },
                )
            )
            events.append((None, "[DONE]"))
        elif route == "anthropic":
            events.append(
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": "msg_stub",
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": tokens_in, "output_tokens": 1},
                        },
                    },
                )
            )
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in pieces:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": tokens_out},
                    },
                )
            )
            events.append(("message_stop", {"type": "message_stop"}))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        for name, data in events:
            line = "" if name is None else f"event: {name}\n"
            line += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            handler.wfile.write(line.encode())
            handler.wfile.flush()
