"""The store filters: the caller's dict as a condition tree, trees combined, and each backend's form."""

from __future__ import annotations

import pytest
import qdrant_edge as edge
from qdrant_client import models

from store.filters import (
    Below,
    HasId,
    HasVector,
    Match,
    Where,
    edge_filter,
    server_filter,
    user_where,
)

pytestmark = pytest.mark.unit


def test_user_filters_become_one_tree() -> None:
    where = user_where(
        {"document_id": "a", "file_type": ["pdf", "md"], "page": 3, "level": {"not": ["parent"]}}
    )
    assert where == Where(
        must=(Match("document_id", "a"), Match("file_type", ("pdf", "md")), Match("page", 3)),
        must_not=(Match("level", ("parent",)),),
    )
    assert not user_where(None) and not user_where({"level": {"not": []}})


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"": "a"}, "non-empty strings"),
        ({"a": ["x", 1]}, "only strings or only integers"),
        ({"a": 1.5}, "string, integer, boolean"),
        ({"a": {"none": ["x"]}}, "'not'"),
        ({"a": {"not": [True, "x"]}}, "only strings or only integers"),
    ],
)
def test_bad_filters_say_what_is_wrong(filters: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        user_where(filters)


def test_trees_combine_flat_unless_both_have_alternatives() -> None:
    a = Where(must=(Match("x", 1),), must_not=(Match("y", 2),))
    b = Where(must=(HasVector("dense"),))
    assert a & b == Where(must=(Match("x", 1), HasVector("dense")), must_not=(Match("y", 2),))
    assert a & None == a and Where() & a == a
    either = Where(should=(HasId(("i",)), Match("id", ("i",))))
    assert (either & a).should == either.should
    both = either & Where(should=(Match("z", 1), Match("z", 2)))
    assert both == Where(must=(either, Where(should=(Match("z", 1), Match("z", 2)))))


def test_each_backend_gets_the_same_conditions() -> None:
    tree = Where(
        must=(Match("file_type", ("pdf",)), Below("at", 5.0), HasVector("dense")),
        should=(HasId(("6f1d2c43-5b7e-4d0a-9c39-2f0f4a1e8b57",)), Match("level", "leaf")),
        must_not=(Where(must=(Match("state", "new"),), must_not=(Match("v", ("a", "b")),)),),
    )
    server = server_filter(tree)
    assert isinstance(server, models.Filter)
    assert server.must[0] == models.FieldCondition(
        key="file_type", match=models.MatchAny(any=["pdf"])
    )
    assert server.must[1] == models.FieldCondition(key="at", range=models.Range(lt=5.0))
    assert server.must[2] == models.HasVectorCondition(has_vector="dense")
    assert server.should[0] == models.HasIdCondition(
        has_id=["6f1d2c43-5b7e-4d0a-9c39-2f0f4a1e8b57"]
    )
    nested = server.must_not[0]
    assert nested.must_not[0] == models.FieldCondition(
        key="v", match=models.MatchAny(any=["a", "b"])
    )
    edge_tree = edge_filter(tree)
    assert isinstance(edge_tree, edge.Filter)
    assert [len(edge_tree.must), len(edge_tree.should), len(edge_tree.must_not)] == [3, 2, 1]
    assert isinstance(edge_tree.must_not[0], edge.Filter)
    assert edge_filter(Where()) is None and server_filter(None) is None
