"""Who may call the API: keys from RAG_API_KEYS (plain or a file of hashes) on /api/v1 and /v1, open probes,
/metrics with its own keys; with no keys, requests from this machine only. Keys never show in logs."""

from __future__ import annotations

import logging

import pytest

from rag.auth import ApiKeys, hash_key, is_loopback, presented_key
from tests.rag.conftest import serving

pytestmark = pytest.mark.integration

KEY = "s3cret-key-for-tests"
OTHER = "another-key"


def test_keys_from_a_list_or_a_file_of_hashes(tmp_path) -> None:  # noqa: ANN001
    keys = ApiKeys.from_setting(f" {KEY} , {OTHER} ")
    assert keys.enabled and keys.allows(KEY) and keys.allows(OTHER)
    assert not keys.allows("s3cret") and not keys.allows("") and not keys.allows(None)
    assert keys.first_plain == KEY
    hashed = tmp_path / "keys.txt"
    hashed.write_text(f"# the ops team\n{hash_key(KEY)}\nsha256:{hash_key(OTHER).upper()}  # CI\n\n")
    from_file = ApiKeys.from_setting(str(hashed))
    assert from_file.allows(KEY) and from_file.allows(OTHER) and not from_file.allows(hash_key(KEY))
    assert from_file.first_plain is None
    hashed.write_text("not-a-hash\n")
    with pytest.raises(ValueError, match="line 1: not a SHA-256 hex digest"):
        ApiKeys.from_setting(str(hashed))
    assert not ApiKeys.from_setting(None).enabled and not ApiKeys.from_setting("  ").enabled
    assert presented_key("Bearer abc", None) == "abc" and presented_key("Basic abc", None) is None
    assert presented_key(None, "xyz") == "xyz"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.2")
    assert not is_loopback("testclient") and not is_loopback(None)


def test_with_keys_the_api_needs_one_and_the_probes_stay_open(api_home, monkeypatch, caplog) -> None:  # noqa: ANN001
    monkeypatch.setenv("RAG_API_KEYS", f"{KEY},{OTHER}")
    caplog.set_level(logging.DEBUG)
    # A client elsewhere on the network: with keys set, where it comes from does not matter.
    with serving(client_host=("10.1.2.3", 40000)) as api:
        for path in ("/health", "/ready", "/metrics"):
            assert api.get(path).status_code == 200, path
        refused = api.get("/api/v1/collections")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["detail"].startswith("Missing or unknown API key")
        wrong = api.get("/api/v1/collections", headers={"Authorization": f"Bearer {KEY}x"})
        assert wrong.status_code == 401 and KEY not in wrong.text
        assert api.get("/api/v1/collections", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert api.get("/api/v1/collections", headers={"X-API-Key": OTHER}).status_code == 200
        assert api.get("/v1/models").status_code == 401
        assert api.get("/v1/models", headers={"Authorization": f"Bearer {OTHER}"}).status_code == 200
        assert api.post("/v1/chat/completions", json={"model": "x", "messages": []}).status_code == 401
        schema = api.get("/api/v1/openapi.json").json()
        assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert KEY not in logged and OTHER not in logged


def test_metrics_can_have_keys_of_their_own(api_home, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("RAG_METRICS_KEYS", "scrape-me")
    with serving() as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
        assert api.get("/health").status_code == 200
        assert api.get("/api/v1/collections").status_code == 200  # no RAG_API_KEYS: this machine may


def test_without_keys_the_api_answers_this_machine_only(api_home) -> None:  # noqa: ANN001
    with serving(client_host=("192.168.1.20", 40000)) as remote:
        refused = remote.get("/api/v1/collections")
        assert refused.status_code == 403 and "RAG_API_KEYS" in refused.json()["detail"]
        assert remote.post("/v1/chat/completions", json={}).status_code == 403
        assert remote.get("/health").status_code == 200 and remote.get("/ready").status_code == 200
        assert remote.get("/").status_code == 200  # the web UI itself has no login (README)
        local = remote.get("/api/v1/collections", headers={"X-Forwarded-For": "127.0.0.1"})
        assert local.status_code == 403  # a header cannot make a request local


def test_rag_serve_says_who_may_call_the_api(monkeypatch, capsys) -> None:  # noqa: ANN001
    import rag.server

    calls = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append(kw))
    monkeypatch.delenv("RAG_API_KEYS", raising=False)
    rag.server.serve(port=8599, address="0.0.0.0", samples=False)
    shown = capsys.readouterr().out
    assert "No API keys (RAG_API_KEYS): the API answers requests from 127.0.0.1 only." in shown
    assert "http://127.0.0.1:8599/api/v1/docs" in shown and "has no login" in shown
    assert calls[0]["host"] == "0.0.0.0" and calls[0]["port"] == 8599 and calls[0]["access_log"] is False
    monkeypatch.setenv("RAG_API_KEYS", KEY)
    rag.server.serve(port=8599, address="127.0.0.1", samples=False)
    shown = capsys.readouterr().out
    assert "API keys: set (RAG_API_KEYS)" in shown and KEY not in shown
