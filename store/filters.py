"""Filters: the contract's `{field: value | [values] | {"not": [values]}}`, a neutral condition
tree the store base builds from it, and that tree in each backend's types.

Every field must match; a list means "any of these values"; `{"not": [values]}` means "none of
these values" (a point without the field passes). The base combines the caller's filter with
its own conditions (which version of a document is visible, which points hold a vector) in
one `Where` tree; each backend only translates the tree, so both agree on what a filter means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import qdrant_edge as edge
from qdrant_client import models

# Filters: payload field -> one value, a list of accepted values, or {"not": [refused values]}.
Filters = dict[str, Any]
Scalar = str | int | bool
NOT = "not"  # {"field": {"not": [values]}}: the field holds none of the values


@dataclass(frozen=True)
class Match:
    """The payload field equals `value`, or one of the values when it is a tuple."""

    key: str
    value: Scalar | tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class Below:
    """The numeric payload field is below `limit`."""

    key: str
    limit: float


@dataclass(frozen=True)
class HasId:
    """The point's stored id is one of `ids`."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class HasVector:
    """The point holds the named vector."""

    name: str


@dataclass(frozen=True)
class Where:
    """All of `must`, at least one of `should` (when given), none of `must_not`."""

    must: tuple[Any, ...] = ()
    should: tuple[Any, ...] = ()
    must_not: tuple[Any, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.must or self.should or self.must_not)

    def __and__(self, other: Where | None) -> Where:
        """Both trees at once; flat lists when neither has `should` alternatives."""
        if not other:
            return self
        if not self:
            return other
        if self.should and other.should:
            return Where(must=(self, other))
        return Where(
            must=self.must + other.must,
            should=self.should or other.should,
            must_not=self.must_not + other.must_not,
        )


def user_where(filters: Filters | None) -> Where:
    """The caller's filters as a condition tree; a ValueError names a bad field or value."""
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"Filter field names must be non-empty strings (got {key!r}).")
        if isinstance(value, dict):
            if set(value) != {NOT}:
                raise ValueError(
                    f"Filter '{key}': a dict must be {{'not': [values]}} (got {value!r})."
                )
            refused = _values(key, value[NOT])
            if refused:  # "none of no values" refuses nothing
                must_not.append(Match(key, refused))
        elif isinstance(value, (list, tuple, set)):
            must.append(Match(key, _values(key, value)))
        elif isinstance(value, (str, bool)) or _is_int(value):
            must.append(Match(key, value))
        else:
            raise ValueError(
                f"Filter '{key}': use a string, integer, boolean or a list of them (got {value!r})."
            )
    return Where(must=tuple(must), must_not=tuple(must_not))


def _values(key: str, value: Any) -> tuple[Any, ...]:
    values = tuple(value) if isinstance(value, (list, tuple, set)) else (value,)
    # Qdrant's MatchAny takes only strings or only integers.
    if not (all(isinstance(v, str) for v in values) or all(_is_int(v) for v in values)):
        raise ValueError(
            f"Filter '{key}': a list must hold only strings or only integers (got {list(values)!r})."
        )
    return values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Dialect:
    """How one backend spells each node of the tree."""

    filter: Callable[[list[Any] | None, list[Any] | None, list[Any] | None], Any]
    match: Callable[[str, Any], Any]  # a tuple value means "any of these"
    below: Callable[[str, float], Any]
    has_id: Callable[[tuple[str, ...]], Any]
    has_vector: Callable[[str], Any]

    def convert(self, where: Where | None) -> Any:
        if not where:
            return None
        return self.filter(
            [self._condition(c) for c in where.must] or None,
            [self._condition(c) for c in where.should] or None,
            [self._condition(c) for c in where.must_not] or None,
        )

    def _condition(self, condition: Any) -> Any:
        if isinstance(condition, Match):
            return self.match(condition.key, condition.value)
        if isinstance(condition, Below):
            return self.below(condition.key, condition.limit)
        if isinstance(condition, HasId):
            return self.has_id(condition.ids)
        if isinstance(condition, HasVector):
            return self.has_vector(condition.name)
        return self.convert(condition)


_EDGE = _Dialect(
    filter=lambda must, should, must_not: edge.Filter(must=must, should=should, must_not=must_not),
    match=lambda key, value: edge.FieldCondition(
        key,
        match=edge.MatchAny(list(value)) if isinstance(value, tuple) else edge.MatchValue(value),
    ),
    below=lambda key, limit: edge.FieldCondition(key, range=edge.RangeFloat(lt=limit)),
    has_id=lambda ids: edge.HasIdCondition(set(ids)),
    has_vector=edge.HasVectorCondition,
)

_SERVER = _Dialect(
    filter=lambda must, should, must_not: models.Filter(
        must=must, should=should, must_not=must_not
    ),
    match=lambda key, value: models.FieldCondition(
        key=key,
        match=models.MatchAny(any=list(value))
        if isinstance(value, tuple)
        else models.MatchValue(value=value),
    ),
    below=lambda key, limit: models.FieldCondition(key=key, range=models.Range(lt=limit)),
    has_id=lambda ids: models.HasIdCondition(has_id=list(ids)),
    has_vector=lambda name: models.HasVectorCondition(has_vector=name),
)


def edge_filter(where: Where | None) -> edge.Filter | None:
    """The tree as a Qdrant Edge filter (None for no conditions)."""
    return _EDGE.convert(where)


def server_filter(where: Where | None) -> models.Filter | None:
    """The tree as a qdrant-client filter (None for no conditions)."""
    return _SERVER.convert(where)
