"""Filter conversion: the contract's `{field: value | [values]}` into each backend's filter types.

Every field must match; a list means "any of these values". Both backends get the same
conditions from `filter_conditions`, so they agree on what a filter means.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from store.base import Filters

Scalar = str | int | bool


def filter_conditions(filters: Filters | None) -> list[tuple[str, Scalar | list[str] | list[int]]]:
    """Validated (field, value or list of values) pairs; a ValueError names a bad one."""
    conditions: list[tuple[str, Any]] = []
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"Filter field names must be non-empty strings (got {key!r}).")
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            # Qdrant's MatchAny takes only strings or only integers.
            if not (all(isinstance(v, str) for v in values) or all(_is_int(v) for v in values)):
                raise ValueError(
                    f"Filter '{key}': a list must hold only strings or only integers (got {values!r})."
                )
            conditions.append((key, values))
        elif isinstance(value, (str, bool)) or _is_int(value):
            conditions.append((key, value))
        else:
            raise ValueError(
                f"Filter '{key}': use a string, integer, boolean or a list of them (got {value!r})."
            )
    return conditions


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def edge_filter(filters: Filters | None, with_vectors: tuple[str, ...] = ()) -> edge.Filter | None:
    """A Qdrant Edge filter; `with_vectors` adds "the point has each of these vectors"."""
    must: list[Any] = []
    for key, value in filter_conditions(filters):
        match = edge.MatchAny(value) if isinstance(value, list) else edge.MatchValue(value)
        must.append(edge.FieldCondition(key, match=match))
    must.extend(edge.HasVectorCondition(name) for name in with_vectors)
    return edge.Filter(must=must) if must else None


def server_filter(
    filters: Filters | None, with_vectors: tuple[str, ...] = ()
) -> models.Filter | None:
    """A qdrant-client filter; `with_vectors` adds "the point has each of these vectors"."""
    must: list[Any] = []
    for key, value in filter_conditions(filters):
        match = (
            models.MatchAny(any=value)
            if isinstance(value, list)
            else models.MatchValue(value=value)
        )
        must.append(models.FieldCondition(key=key, match=match))
    must.extend(models.HasVectorCondition(has_vector=name) for name in with_vectors)
    return models.Filter(must=must) if must else None
