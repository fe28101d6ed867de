"""The Qdrant server path with an API key and over HTTPS: the key goes in Qdrant's `api-key` header,
a refused key is a clear error that never quotes the key, and an https URL is spoken to over TLS."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import StoreError
from store.server import ServerStore

pytestmark = pytest.mark.integration

KEY = "qdrant-PLANTED-key-5e6f7a8b"


class QdrantKeyStub(ThreadingHTTPServer):
    """Answers GET / and GET /collections as Qdrant does, when the request carries the right api-key."""

    def __init__(self) -> None:
        self.seen_keys: list[str | None] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                stub.seen_keys.append(self.headers.get("api-key"))
                if self.path.rstrip("/") == "":
                    body, code = {"title": "qdrant - vector search engine", "version": "1.15.0"}, 200
                elif self.headers.get("api-key") != KEY:
                    body, code = {"status": {"error": "Invalid api-key"}, "time": 0.0}, 403
                else:
                    body, code = {"result": {"collections": [{"name": "docs"}]}, "status": "ok", "time": 0.0}, 200
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def qdrant() -> Iterator[QdrantKeyStub]:
    server = QdrantKeyStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_api_key_is_sent_and_a_refused_key_is_a_clear_error(qdrant: QdrantKeyStub) -> None:
    store = ServerStore(url=qdrant.url, api_key=KEY)
    assert store.list_collections() == ["docs"]
    assert KEY in qdrant.seen_keys
    store.close()

    wrong = ServerStore(url=qdrant.url, api_key=KEY + "-wrong")
    with pytest.raises(StoreError) as caught:
        wrong.list_collections()
    assert "refused the request (403)" in str(caught.value) and qdrant.url in str(caught.value)
    assert KEY not in str(caught.value)
    wrong.close()


def test_an_https_url_is_spoken_to_over_tls(qdrant: QdrantKeyStub) -> None:
    """The same stub speaks plain HTTP: a client that talks TLS to it fails to connect, with the
    message that names the URL (and never the key)."""
    url = qdrant.url.replace("http://", "https://")
    store = ServerStore(url=url, api_key=KEY)
    assert store.client.init_options["url"] == url
    with pytest.raises(StoreError) as caught:
        store.list_collections()
    assert f"Cannot reach the Qdrant server at {url}" in str(caught.value)
    assert KEY not in str(caught.value)
    assert not any(k == KEY for k in qdrant.seen_keys)  # no key ever went out in clear text
    store.close()
