"""Properties, over many generated inputs (Hypothesis): the citation parser and the citation check
never return a source number that was not given, and ids are stable across runs and spellings.
(Chunkers losing and inventing no text: tests/ingest/test_chunkers.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from answer.grounding import verify
from core.citations import marker_numbers
from core.types import Answer, Citation, ScoredChunk
from ingest.pipeline import document_id_for, point_id_for
from llm.errors import InvalidOutputError
from llm.prompt import parse_reply
from tests.conftest import REPO_ROOT
from tests.ingest.test_pipeline import HashEmbedder

pytestmark = pytest.mark.unit

numbers = st.integers(min_value=-3, max_value=40)
marker = st.lists(numbers, min_size=1, max_size=3).map(lambda ns: "[" + ", ".join(map(str, ns)) + "]")
words = st.sampled_from(["The pump", "runs at", "45 degrees", "and", "the warranty", "lasts", "ten years.", "\n"])
answer_text = st.lists(st.one_of(words, marker), max_size=14).map(" ".join)


@given(text=answer_text, declared=st.lists(numbers, max_size=5), count=st.integers(0, 8),
       json_output=st.booleans())
def test_the_reply_parser_accepts_only_citations_to_given_sources(
    text: str, declared: list[int], count: int, json_output: bool
) -> None:
    reply = json.dumps({"answer": text, "citations": declared}) if json_output else text
    try:
        payload = parse_reply(reply, count, json_output, cited=None if json_output else declared)
    except InvalidOutputError:
        return  # refused, with the reason for the repair prompt: nothing reaches the answer
    assert all(1 <= n <= count for n in payload.citations)
    assert set(marker_numbers(payload.answer)) <= set(payload.citations)




def source(n: int) -> ScoredChunk:
    return ScoredChunk(id=f"chunk-{n}", score=1.0 / n, text=f"Source {n}: the pump runs at {40 + n} degrees.",
                       payload={"file_name": f"doc{n}.txt", "page": 1, "document_id": f"d{n}"})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=answer_text, listed=st.lists(numbers, max_size=4), count=st.integers(0, 6))
def test_the_citation_check_never_keeps_a_source_that_was_not_given(text: str, listed: list[int], count: int) -> None:
    sources = [source(n) for n in range(1, count + 1)]
    citations = [Citation(n=n, chunk_id=f"chunk-{n}", document="x", page=1, text="", score=0.0) for n in listed]
    checked = verify(Answer(text=text, citations=citations), sources, HashEmbedder())
    assert all(1 <= c.n <= count for c in checked.citations)
    assert set(marker_numbers(checked.text)) <= {c.n for c in checked.citations}
    for citation in checked.citations:
        assert citation.chunk_id == sources[citation.n - 1].id or citation.n in listed


names = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
                         min_size=1, max_size=12), min_size=1, max_size=3).map("/".join)


@given(name=names, collection=st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True))
def test_a_document_id_does_not_depend_on_how_its_name_is_spelled(name: str, collection: str) -> None:
    nfc = unicodedata.normalize("NFC", name)
    same = {document_id_for(collection, spelling)
            for spelling in (name, nfc, unicodedata.normalize("NFD", nfc), "./" + nfc)}
    assert len(same) == 1
    assert document_id_for(collection + "x", name) not in same


_IDS_IN_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ingest.pipeline import document_id_for, point_id_for
cases = json.loads(sys.stdin.read())
print(json.dumps([[document_id_for(c, s), point_id_for(document_id_for(c, s), h, settings, i)]
                  for c, s, h, settings, i in cases]))
"""


def test_ids_are_the_same_in_another_process() -> None:
    """Ids come from uuid5 of their parts, never from Python's per-process string hashes."""
    cases = [[f"col{i % 3}", f"folder/doc {i}.pdf", hashlib.sha256(str(i).encode()).hexdigest(),
              {"chunker": "sentence", "chunk_size": 100 + i, "overlap": (i, i + 1)}, i] for i in range(40)]
    here = [[document_id_for(c, s), point_id_for(document_id_for(c, s), h, json.loads(json.dumps(st_)), i)]
            for c, s, h, st_, i in cases]
    runs = []
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", _IDS_IN_CHILD, str(REPO_ROOT)], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)})
        assert done.returncode == 0, done.stderr[-1500:]
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1] == here
    assert len({pid for _, pid in here}) == len(here)
