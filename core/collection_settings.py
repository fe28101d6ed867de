"""Settings chosen for one collection, kept under RAG_HOME beside the store.

The global settings (env vars, `.env`) hold the defaults; a collection may carry its own values
where they were chosen on its documents: today the extractive answerer's abstention threshold,
picked by `rag calibrate`. One small JSON file per collection:
`RAG_HOME/collections/<collection>.json`, e.g.

    {"abstain_threshold": 0.42, "calibration": {"datasets": [...], "split": "dev", ...}}
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import RagError

FOLDER = "collections"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CollectionSettings(BaseModel):
    """A collection's own values; None means: the global setting."""

    model_config = ConfigDict(extra="ignore")

    abstain_threshold: float | None = Field(default=None, ge=0.0)
    # How the values were chosen (data sets, split, the curve point): for people, not read by code.
    calibration: dict[str, Any] = Field(default_factory=dict)


def collection_settings_path(home: Path, collection: str) -> Path:
    """Where a collection's settings live under `home` (RAG_HOME)."""
    if not _SAFE_NAME.fullmatch(collection or ""):
        raise RagError(f"Collection names use letters, digits, '-' and '_' (got {collection!r}).")
    return Path(home) / FOLDER / f"{collection}.json"


def load_collection_settings(home: Path, collection: str) -> CollectionSettings:
    """The collection's settings; empty ones when it has none. A broken file is an error that
    names the file, not a silent fallback."""
    path = collection_settings_path(home, collection)
    if not path.is_file():
        return CollectionSettings()
    try:
        return CollectionSettings.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise RagError(f"{path} is not valid collection settings ({exc}): fix or delete it.") from exc


def save_collection_settings(home: Path, collection: str, values: CollectionSettings) -> Path:
    """Write the collection's settings at once (a temporary file renamed over the old one)."""
    path = collection_settings_path(home, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(values.model_dump_json(indent=1))
    os.replace(tmp.name, path)
    return path


def abstain_threshold_for(settings: Any, collection: str) -> float:
    """The abstention threshold answers in `collection` use: its own, else the global setting."""
    own = load_collection_settings(settings.home, collection).abstain_threshold
    return float(settings.abstain_threshold if own is None else own)
