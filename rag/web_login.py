"""Who may open the web UI: Streamlit's `st.login` (OpenID Connect) when a provider is configured, else
anyone who reaches the port (the UI has no login of its own; `rag serve` says so at start).

A provider is configured either as Streamlit documents it, in the `[auth]` section of
`.streamlit/secrets.toml` (what `streamlit run app.py` reads), or, for `rag serve`, with the settings
RAG_OIDC_SERVER_METADATA_URL, RAG_OIDC_CLIENT_ID, RAG_OIDC_CLIENT_SECRET, RAG_OIDC_REDIRECT_URI and
RAG_OIDC_COOKIE_SECRET, which `rag serve` hands to Streamlit as that same section. RAG_WEB_ALLOWED_USERS
(emails or @domains) narrows who, once logged in, may use the app.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import ConfigError
from core.settings import Settings

CALLBACK_PATH = "/oauth2callback"  # Streamlit's own callback route


def oidc_secrets(settings: Settings, app_url: str | None = None) -> dict[str, Any] | None:
    """The `[auth]` secrets section for `st.App(secrets=...)` from the RAG_OIDC_* settings; None when no
    provider is set. `app_url`: where the app is reached, for the default redirect URI."""
    named = {"RAG_OIDC_SERVER_METADATA_URL": settings.oidc_server_metadata_url,
             "RAG_OIDC_CLIENT_ID": settings.oidc_client_id,
             "RAG_OIDC_CLIENT_SECRET": settings.oidc_client_secret}
    if not any(named.values()):
        return None
    missing = [name for name, value in named.items() if not value]
    if missing:
        raise ConfigError(f"The web login needs {', '.join(missing)} too (or none of the RAG_OIDC_* settings "
                          "for a UI without login).")
    redirect_uri = settings.oidc_redirect_uri or (app_url.rstrip("/") + CALLBACK_PATH if app_url else None)
    if not redirect_uri:
        raise ConfigError("Set RAG_OIDC_REDIRECT_URI to the app's address + /oauth2callback, as registered with "
                          "the provider (e.g. https://rag.example.org/oauth2callback).")
    if not redirect_uri.endswith(CALLBACK_PATH):
        raise ConfigError(f"RAG_OIDC_REDIRECT_URI must end with {CALLBACK_PATH} (got {redirect_uri!r}).")
    cookie = settings.oidc_cookie_secret.get_secret_value() if settings.oidc_cookie_secret else ""
    client_secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    return {"auth": {
        "redirect_uri": redirect_uri,
        # Without a set secret, logins last as long as this process (and differ between replicas).
        "cookie_secret": cookie or secrets.token_urlsafe(32),
        "client_id": settings.oidc_client_id,
        "client_secret": client_secret,
        "server_metadata_url": settings.oidc_server_metadata_url,
    }}


def is_allowed(email: str | None, allowed: Sequence[str]) -> bool:
    """True when `allowed` is empty, or names this email or its @domain (case-insensitive)."""
    wanted = [a.strip().lower() for a in allowed if a.strip()]
    if not wanted:
        return True
    email = (email or "").strip().lower()
    if "@" not in email:
        return False
    domain = "@" + email.rsplit("@", 1)[1]
    return email in wanted or domain in wanted


def login_configured() -> bool:
    """True when Streamlit's secrets hold an `[auth]` section (a provider for st.login)."""
    try:
        return bool(st.secrets.get("auth"))
    except FileNotFoundError:  # Streamlit's "no secrets": raised for a file it cannot parse too
        from streamlit import config

        if any(Path(f).exists() for f in config.get_option("secrets.files")):
            raise  # a secrets file that cannot be read must not turn the login off
        return False


def _logged_in() -> bool:
    return bool(st.user.get("is_logged_in", False))


def login_gate(pages: list[Any]) -> list[Any]:
    """The pages this session may open: all of them without a configured login, or once logged in as an
    allowed user (RAG_WEB_ALLOWED_USERS; with the account and a log-out button in the sidebar); else only
    the login page."""
    if not login_configured():
        return pages
    from rag.web import get_service

    allowed = get_service().settings.web_allowed_users.split(",")
    if _logged_in() and is_allowed(st.user.get("email"), allowed):
        with st.sidebar:
            st.caption(f"Signed in as {st.user.get('name') or st.user.get('email') or 'you'}")
            st.button("Log out", on_click=st.logout, key="log_out", icon=":material/logout:")
        return pages
    # Every page's address leads to the login prompt (a bookmark of /documents too), shown once in the menu.
    # (The default page is the one whose url_path is "": the root.)
    return [st.Page(login_page, title="Log in", icon=":material/login:", url_path=p.url_path or "login",
                    default=not p.url_path, visibility="hidden" if p.url_path else "visible") for p in pages]


def login_page() -> None:
    """The only page a session sees before it logs in (or when its account is not allowed)."""
    st.title("Ask your documents")
    if _logged_in():
        who = st.user.get("email") or st.user.get("name") or "This account"
        st.error(f"{who} may not use this app: ask its administrator to add you (RAG_WEB_ALLOWED_USERS), "
                 "or log in with another account.", icon=":material/block:")
        st.button("Log out", on_click=st.logout, key="log_out_refused")
        return
    st.info("Log in to ask questions of the documents.", icon=":material/lock:")
    st.button("Log in", on_click=st.login, type="primary", key="log_in", icon=":material/login:")
