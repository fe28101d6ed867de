"""Ollama and llama.cpp's server: the local LLMs people run, spoken to through their OpenAI-compatible API.

Each gets its usual address (Ollama: OLLAMA_HOST's rules, default http://127.0.0.1:11434/v1; llama.cpp's
`llama-server`: http://127.0.0.1:8080/v1), needs no key, and turns its failures into messages that name
the fix. A server that is not running and a model that is not pulled are not retried: waiting cannot
start a server or pull a model, so the chain moves on (to the extractive answerer) at once.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

from core.errors import ConfigError
from llm.errors import ProviderError, ProviderRequestError
from llm.openai_provider import OpenAIProvider
from llm.retry import RetryPolicy

OLLAMA_PORT = 11434
DEFAULT_OLLAMA_HOST = f"http://127.0.0.1:{OLLAMA_PORT}"
DEFAULT_LLAMACPP_URL = "http://127.0.0.1:8080/v1"
# Listen-on-every-interface addresses (a server's OLLAMA_HOST) are reached through loopback.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


class LocalServerDownError(ProviderError):
    """Nothing answers at the server's address (connection refused, unknown host): not retried."""


class LocalServerTimeoutError(ProviderError):
    """The server took longer than the timeout (a large model on a CPU): asking again would take as long."""


class ModelNotPulledError(ProviderRequestError):
    """Ollama has no model of that name; the message says which `ollama pull` fetches it."""


def ollama_host_url(host: str | None) -> str:
    """Ollama's address as `scheme://host:port[/path]`, read the way Ollama reads OLLAMA_HOST.

    "" -> http://127.0.0.1:11434; "0.0.0.0" or ":11434" -> loopback; "host" -> port 11434;
    "http://host" -> port 80 and "https://host" -> 443 (Ollama's own defaults); a trailing /v1 is dropped.
    """
    value = (host or "").strip().rstrip("/")
    scheme, separator, rest = value.partition("://")
    if separator:
        default_port = {"http": 80, "https": 443}.get(scheme.lower(), OLLAMA_PORT)
    else:
        scheme, rest, default_port = "http", value, OLLAMA_PORT
    hostport, _, path = rest.partition("/")
    try:
        parts = urlsplit(f"//{hostport}")
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(
            f"OLLAMA_HOST {host!r} is not an address like http://127.0.0.1:11434 (RAG_OLLAMA_HOST or OLLAMA_HOST)"
        ) from None
    name = parts.hostname or "127.0.0.1"
    name = ANY_ADDRESS.get(name, name)
    name = f"[{name}]" if ":" in name else name
    path = path.strip("/")
    path = "" if path in ("", "v1") else "/" + path.removesuffix("/v1")
    return f"{scheme.lower()}://{name}:{port}{path}"


def server_base_url(url: str | None, default: str = DEFAULT_LLAMACPP_URL) -> str:
    """An OpenAI-compatible base URL from what a person types: scheme and /v1 added when left out."""
    value = (url or "").strip().rstrip("/") or default
    if "://" not in value:
        value = f"http://{value}"
    parts = urlsplit(value)
    if not parts.hostname:
        raise ConfigError(f"{url!r} is not a server address like {default}")
    return value if parts.path.strip("/") else f"{value}/v1"


def _connection_refused(exc: BaseException) -> bool:
    """Whether the cause of an SDK connection error is that nothing listens (refused, unknown host)."""
    seen: BaseException | None = exc
    for _ in range(8):  # SDK error -> httpx -> httpcore -> OSError; a bound guards against odd chains
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError | socket.gaierror) or type(seen).__name__ == "ConnectError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _status_message(exc: Any) -> str:
    """The error text of an HTTP error reply, in OpenAI's shape ({"error": {"message"}}) or Ollama's
    native one ({"error": "..."})."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return str(body) if body else str(exc)


class LocalServerProvider(OpenAIProvider):
    """An OpenAI-compatible server on the person's own machine: no key sent (their OpenAI key stays
    theirs), no price, and a refused connection or a timeout is reported with the fix, not retried."""

    runs_locally = True
    server = "the server"
    start_hint = ""

    def __init__(
        self, model: str, base_url: str, api_key: str, timeout_s: float = 120.0, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(model, base_url, api_key=api_key, timeout_s=timeout_s, retry=retry)

    @property
    def address(self) -> str:
        """Where the server is, as a person would write it."""
        return self.base_url

    def _error(self, exc: Exception) -> ProviderError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return LocalServerTimeoutError(
                f"{self.server} at {self.address} did not answer within {self.timeout_s:g} s: use a smaller "
                "model or raise RAG_LOCAL_LLM_TIMEOUT_S",
                self.label,
            )
        if isinstance(exc, openai.APIConnectionError) and _connection_refused(exc):
            return LocalServerDownError(f"{self.server} is not running at {self.address}: {self.start_hint}",
                                        self.label)
        if isinstance(exc, openai.NotFoundError):
            return self._not_found(_status_message(exc))
        return super()._error(exc)

    def _not_found(self, message: str) -> ProviderError:
        return ProviderRequestError(
            f"no chat completions at {self.base_url} ({message}): check the address, it usually ends in /v1",
            self.label,
        )


class OllamaProvider(LocalServerProvider):
    """A model served by Ollama (`ollama serve`), named as Ollama names it ("llama3.2:1b").

    The address comes from `host`, else OLLAMA_HOST, else http://127.0.0.1:11434; OLLAMA_API_KEY is
    sent when set (a proxy in front of Ollama), otherwise any key does.
    """

    name = "ollama"
    key_env = "OLLAMA_API_KEY"
    server = "Ollama"
    start_hint = "start it with `ollama serve`"

    def __init__(
        self, model: str, host: str | None = None, timeout_s: float = 120.0, retry: RetryPolicy | None = None
    ) -> None:
        if not model:
            raise ConfigError("name the Ollama model: ollama:<model>, e.g. ollama:llama3.2:1b (RAG_OLLAMA_MODEL)")
        self.host = ollama_host_url(host if host else os.environ.get("OLLAMA_HOST"))
        key = os.environ.get(self.key_env) or "ollama"
        super().__init__(model, f"{self.host}/v1", api_key=key, timeout_s=timeout_s, retry=retry)

    @property
    def address(self) -> str:
        return self.host

    def pulled_models(self) -> list[str] | None:
        """The models Ollama has (GET /v1/models), or None when it cannot tell."""
        try:
            page = self._sdk().with_options(timeout=min(self.timeout_s, 5.0)).models.list()
            return sorted(model.id for model in page.data)
        except Exception:  # noqa: BLE001 - only used to enrich a message
            return None

    def _not_found(self, message: str) -> ProviderError:
        if "not found" not in message.lower() or "model" not in message.lower():
            return super()._not_found(message)
        pulled = self.pulled_models()
        have = ""
        if pulled is not None:
            have = f" (pulled here: {', '.join(pulled)})" if pulled else " (no model is pulled here yet)"
        return ModelNotPulledError(
            f"The model {self.model} is not pulled: run `ollama pull {self.model}`{have}", self.label
        )


class LlamaCppServerProvider(LocalServerProvider):
    """llama.cpp's `llama-server`, which serves the one GGUF model it was started with.

    `model` labels answers and keys the response cache; the server's address does both, so two
    servers never share cached replies. LLAMA_API_KEY is sent when set (`llama-server --api-key`).
    """

    name = "llamacpp"
    key_env = "LLAMA_API_KEY"
    server = "llama.cpp's server"
    start_hint = "start it with `llama-server -m MODEL.gguf --port 8080`"

    def __init__(self, url: str | None = None, timeout_s: float = 120.0, retry: RetryPolicy | None = None) -> None:
        base_url = server_base_url(url)
        key = os.environ.get(self.key_env) or "no-key"
        super().__init__(base_url, base_url, api_key=key, timeout_s=timeout_s, retry=retry)
