"""API keys: who may call /api/v1, /v1 and /metrics. Keys are held as SHA-256 digests and compared in
constant time; a key is never logged or echoed back."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr

_HEX_DIGEST = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of a key, as a keys file holds it (`printf %s KEY | sha256sum`)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    """The keys that may call a part of the API; none means that part is not protected by keys."""

    def __init__(self, digests: Iterable[bytes] = (), *, plain: Iterable[str] = ()) -> None:
        self._digests = tuple(digests)
        # Plain keys stay only so `rag` in the server's own shell can use the first one (rag/client.py).
        self._plain = tuple(plain)

    @classmethod
    def from_setting(cls, value: SecretStr | str | None) -> ApiKeys:
        """Keys from a setting: a comma-separated list, or the path of a file of SHA-256 hex digests
        (one a line, `sha256:` prefix allowed, `#` starts a comment). A bad line is a ValueError."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
        text = text.strip()
        if not text:
            return cls()
        path = Path(text).expanduser()
        if "," not in text and path.is_file():
            digests = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                match = _HEX_DIGEST.fullmatch(line)
                if match is None:
                    raise ValueError(f"{path}, line {number}: not a SHA-256 hex digest (64 hex digits); "
                                     "hash a key with `printf %s KEY | sha256sum`")
                digests.append(bytes.fromhex(match.group(1)))
            return cls(digests)
        keys = [k.strip() for k in text.split(",") if k.strip()]
        return cls((hashlib.sha256(k.encode("utf-8")).digest() for k in keys), plain=keys)

    @property
    def enabled(self) -> bool:
        """True when at least one key is set."""
        return bool(self._digests)

    @property
    def first_plain(self) -> str | None:
        """The first key given in plain text (None when the keys came from a file of hashes)."""
        return self._plain[0] if self._plain else None

    def allows(self, presented: str | None) -> bool:
        """True when `presented` is one of the keys; every key is compared, in constant time."""
        if not presented or not self._digests:
            return False
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(known, digest)
        return found


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries: `Authorization: Bearer KEY` (what OpenAI clients send) or `X-API-Key`."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def is_loopback(host: str | None) -> bool:
    """True for a client on this machine (127.0.0.0/8, ::1)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
