"""The web UI's login (rag/web_login.py): with an OpenID Connect provider configured, a session that has not
logged in sees only the login page; a logged-in user sees the app, unless RAG_WEB_ALLOWED_USERS leaves them
out; with no provider, the app opens as before. The RAG_OIDC_* settings become Streamlit's [auth] secrets."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import Settings
from rag.web_login import is_allowed, oidc_secrets

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "a-long-enough-cookie-secret",
        "client_id": "rag-app", "client_secret": "s3cret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


def _buttons(at) -> list[str]:  # noqa: ANN001
    return [b.label for b in at.button]


@pytest.mark.integration
def test_an_unauthenticated_session_sees_only_the_login_prompt(app) -> None:  # noqa: ANN001
    app.secrets["auth"] = AUTH
    app.user = {"is_logged_in": False}
    at = app.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Ask your documents"]
    assert "Log in to ask questions of the documents." in [i.value for i in at.info]
    assert _buttons(at) == ["Log in"]
    assert not at.chat_input and not at.sidebar.selectbox  # no chat, no collections, nothing of the documents


@pytest.mark.integration
def test_a_logged_in_user_sees_the_app_and_can_log_out(app) -> None:  # noqa: ANN001
    app.secrets["auth"] = AUTH
    app.user = {"is_logged_in": True, "email": "ada@example.org", "name": "Ada"}
    at = app.run()
    assert not at.exception, at.exception
    assert at.chat_input  # the Chat page
    assert "Signed in as Ada" in [c.value for c in at.sidebar.caption]
    at.sidebar.button(key="log_out").click().run()
    assert not at.exception, at.exception
    # st.logout forgot the identity (the browser is sent to /auth/logout: tests/web/test_browser_login.py).
    assert at.user == {"is_logged_in": False}


@pytest.mark.integration
def test_a_user_outside_the_allowed_list_is_refused(app, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("RAG_WEB_ALLOWED_USERS", "@example.org, grace@navy.mil")
    app.secrets["auth"] = AUTH
    app.user = {"is_logged_in": True, "email": "mallory@elsewhere.net"}
    at = app.run()
    assert not at.exception, at.exception
    assert not at.chat_input
    assert at.error[0].value.startswith("mallory@elsewhere.net may not use this app")
    assert _buttons(at) == ["Log out"]


@pytest.mark.integration
def test_without_a_provider_the_app_opens_without_login(app) -> None:  # noqa: ANN001
    at = app.run()
    assert not at.exception, at.exception
    assert at.chat_input and "Log in" not in _buttons(at)


def test_allowed_users_by_email_or_domain() -> None:
    allowed = ["@example.org", "Grace@Navy.mil"]
    assert is_allowed("ada@example.org", allowed) and is_allowed("grace@navy.mil", allowed)
    assert not is_allowed("ada@example.org.evil.net", allowed) and not is_allowed("kim@navy.mil", allowed)
    assert not is_allowed(None, allowed) and not is_allowed("no-email", allowed)
    assert is_allowed(None, []) and is_allowed("anyone@anywhere.net", ["", " "])


def test_oidc_settings_become_streamlit_auth_secrets(monkeypatch) -> None:  # noqa: ANN001
    for key in ("RAG_OIDC_SERVER_METADATA_URL", "RAG_OIDC_CLIENT_ID", "RAG_OIDC_CLIENT_SECRET",
                "RAG_OIDC_REDIRECT_URI", "RAG_OIDC_COOKIE_SECRET"):
        monkeypatch.delenv(key, raising=False)
    assert oidc_secrets(Settings()) is None  # no provider: no login
    monkeypatch.setenv("RAG_OIDC_SERVER_METADATA_URL", AUTH["server_metadata_url"])
    monkeypatch.setenv("RAG_OIDC_CLIENT_ID", "rag-app")
    with pytest.raises(ConfigError, match="RAG_OIDC_CLIENT_SECRET"):
        oidc_secrets(Settings())
    monkeypatch.setenv("RAG_OIDC_CLIENT_SECRET", "s3cret")
    section = oidc_secrets(Settings(), "http://127.0.0.1:8501")["auth"]
    assert section["redirect_uri"] == "http://127.0.0.1:8501/oauth2callback"  # rag serve's own address
    assert section["client_secret"] == "s3cret" and len(section["cookie_secret"]) >= 32
    assert oidc_secrets(Settings(), "http://x")["auth"]["cookie_secret"] != section["cookie_secret"]
    monkeypatch.setenv("RAG_OIDC_COOKIE_SECRET", "kept-across-restarts-and-replicas")
    monkeypatch.setenv("RAG_OIDC_REDIRECT_URI", "https://rag.example.org/oauth2callback")
    section = oidc_secrets(Settings(), "http://127.0.0.1:8501")["auth"]
    assert section["cookie_secret"] == "kept-across-restarts-and-replicas"
    assert section["redirect_uri"] == "https://rag.example.org/oauth2callback"
    monkeypatch.setenv("RAG_OIDC_REDIRECT_URI", "https://rag.example.org/")
    with pytest.raises(ConfigError, match="must end with /oauth2callback"):
        oidc_secrets(Settings())


def test_a_secrets_file_that_cannot_be_read_never_turns_the_login_off(tmp_path) -> None:  # noqa: ANN001
    from streamlit import config
    from streamlit.runtime.secrets import secrets_singleton

    from rag.web_login import login_configured

    bad = tmp_path / "secrets.toml"
    bad.write_text('[auth\nclient_id = "rag-app"\n')
    files = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(bad)])
    secrets_singleton._reset()
    try:
        with pytest.raises(FileNotFoundError):  # Streamlit's error, shown instead of an open app
            login_configured()
        bad.write_text('[auth]\nclient_id = "rag-app"\n')
        secrets_singleton._reset()
        assert login_configured()
        bad.unlink()
        secrets_singleton._reset()
        assert not login_configured()  # no secrets file at all: no login configured
    finally:
        config.set_option("secrets.files", files)
        secrets_singleton._reset()
