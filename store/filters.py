"""Filter conversion: the contract's `{field: value | [values] | {"not": [values]}}` into each
backend's filter types.

Every field must match; a list means "any of these values"; `{"not": [values]}` means "none of
these values" (a point without the field passes). Both backends get the same conditions from
`filter_conditions`, so they agree on what a filter means.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge
from qdrant_client import models

from store.base import Filters

Scalar = str | int | bool
NOT = "not"  # {"field": {"not": [values]}}: the field holds none of the values


def filter_conditions(filters: Filters | None) -> list[tuple[str, Scalar | list[str] | list[int]]]:
    """Validated (field, value or list of values) pairs that must match; a ValueError names a bad one."""
    conditions: list[tuple[str, Any]] = []
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"Filter field names must be non-empty strings (got {key!r}).")
        if isinstance(value, dict):
            if set(value) != {NOT}:
                raise ValueError(
                    f"Filter '{key}': a dict must be {{'not': [values]}} (got {value!r})."
                )
            _values(key, value[NOT])  # validated here, converted by `excluded_conditions`
        elif isinstance(value, (list, tuple, set)):
            conditions.append((key, _values(key, value)))
        elif isinstance(value, (str, bool)) or _is_int(value):
            conditions.append((key, value))
        else:
            raise ValueError(
                f"Filter '{key}': use a string, integer, boolean or a list of them (got {value!r})."
            )
    return conditions


def excluded_conditions(filters: Filters | None) -> list[tuple[str, list[str] | list[int]]]:
    """The (field, values) pairs a point must not match: the `{"not": [values]}` entries."""
    filter_conditions(filters)
    excluded = [
        (key, _values(key, value[NOT]))
        for key, value in (filters or {}).items()
        if isinstance(value, dict)
    ]
    return [
        (key, values) for key, values in excluded if values
    ]  # "none of no values" excludes nothing


def _values(key: str, value: Any) -> list[Any]:
    values = list(value) if isinstance(value, (list, tuple, set)) else [value]
    # Qdrant's MatchAny takes only strings or only integers.
    if not (all(isinstance(v, str) for v in values) or all(_is_int(v) for v in values)):
        raise ValueError(
            f"Filter '{key}': a list must hold only strings or only integers (got {values!r})."
        )
    return values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def edge_filter(filters: Filters | None, with_vectors: tuple[str, ...] = ()) -> edge.Filter | None:
    """A Qdrant Edge filter; `with_vectors` adds "the point has each of these vectors"."""
    must: list[Any] = []
    for key, value in filter_conditions(filters):
        match = edge.MatchAny(value) if isinstance(value, list) else edge.MatchValue(value)
        must.append(edge.FieldCondition(key, match=match))
    must.extend(edge.HasVectorCondition(name) for name in with_vectors)
    must_not = [
        edge.FieldCondition(key, match=edge.MatchAny(values))
        for key, values in excluded_conditions(filters)
    ]
    if not must and not must_not:
        return None
    return edge.Filter(must=must or None, must_not=must_not or None)


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
    must_not = [
        models.FieldCondition(key=key, match=models.MatchAny(any=values))
        for key, values in excluded_conditions(filters)
    ]
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)
