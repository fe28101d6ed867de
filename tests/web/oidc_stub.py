"""A small OpenID Connect provider on 127.0.0.1 for the login tests: discovery, an authorization endpoint
that signs in its one user at once (as a provider does once the person has typed their password),
the token endpoint (client_secret_basic; an RS256 ID token with the request's nonce), the JWKS and an
end-session endpoint. It speaks the protocol as Authlib, and so Streamlit's st.login, expects."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


class OidcStub:
    """`start()`, then `issuer` and `metadata_url`; `logins` counts the codes it exchanged."""

    def __init__(self, client_id: str, client_secret: str, user: dict[str, Any]) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.key = RSAKey.generate_key(2048, parameters={"kid": "stub-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, str]] = {}
        self.logins = 0
        self.logouts = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.metadata_url = f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OidcStub:
        threading.Thread(target=self._server.serve_forever, name="oidc-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 600, "nonce": nonce,
                  **self.user}
        return jwt.encode({"alg": "RS256", "kid": "stub-key"}, claims, self.key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, stub.metadata())
                elif url.path == "/jwks":
                    self._json(200, {"keys": [stub.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    if query.get("client_id") != stub.client_id or query.get("response_type") != "code":
                        self._json(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    stub.codes[code] = {"nonce": query.get("nonce", ""), "redirect_uri": query["redirect_uri"]}
                    self._redirect(f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")
                elif url.path == "/logout":
                    stub.logouts += 1
                    self._redirect(query.get("post_logout_redirect_uri", "/"))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                expected = base64.b64encode(f"{stub.client_id}:{stub.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._json(401, {"error": "invalid_client"})
                    return
                grant = stub.codes.pop(form.get("code", ""), None)
                if (grant is None or form.get("grant_type") != "authorization_code"
                        or form.get("redirect_uri") != grant["redirect_uri"]):
                    self._json(400, {"error": "invalid_grant"})
                    return
                stub.logins += 1
                self._json(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                 "expires_in": 600, "id_token": stub.id_token(grant["nonce"])})

        return Handler
