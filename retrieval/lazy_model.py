"""Models that load on first use, once, even when several threads ask at the same time."""

from __future__ import annotations

import threading
from typing import Any


class LazyModel:
    """Subclasses write `_build()`; `_load()` calls it once and keeps the result."""

    _model: Any = None

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._build()
        return self._model

    def _build(self) -> Any:
        raise NotImplementedError
