"""Secrets never shown: API keys are masked out of any message before it is raised, logged or shown."""

from __future__ import annotations

import os
import re
import threading

REDACTED = "[redacted]"
# Environment variables whose values are secrets: API keys, tokens, passwords.
_SECRET_NAME = re.compile(r"(_API_KEYS?|_KEY|_TOKEN|_SECRET|_PASSWORD)$")
_MIN_LENGTH = 8  # shorter values are too likely to be ordinary words
_known: set[str] = set()
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Treat `value` as a secret from now on (a key given in code or settings, not the environment)."""
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _known.add(value)


def secret_values() -> list[str]:
    """Every secret known now, longest first (so a key that holds another is masked whole)."""
    found = set(_known)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name.upper()) and value:
            # RAG_API_KEYS holds several keys, comma-separated.
            found.update(v.strip() for v in value.split(",") if len(v.strip()) >= _MIN_LENGTH)
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every known secret replaced by [redacted]."""
    for secret in secret_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
