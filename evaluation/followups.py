"""Follow-up pairs built from a data set's own questions, and how often search finds their gold.

A pair is an opening question that names its document and a second question that keeps only
what changed, as a person continues a conversation. Its standalone version is what the second
question means on its own; the gold is the standalone version's gold document. Three kinds:

- period (document series such as `2023 Q1 INTC.pdf`): an opening question naming a company and
  a quarter, then "And in Q2 2023?"; standalone: the opening question with the other quarter,
  gold: that quarter's filing of the company.
- name (the same series): then "What about NVIDIA?"; standalone: the opening question about
  the other company, gold: its filing for the same quarter.
- subject (any set): two questions of the same gold document sharing a name; the second loses
  the name (it becomes "it"/"its") and, in a series, its period; standalone: the second as the
  data set words it.

Search runs the product's own path: the condense stage (answer/condense.py), then search.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from answer.condense import Condenser
from answer.pipeline import condense, search
from core.stages import Query
from core.trace import Trace
from evaluation.datasets import SPLITS, Dataset, Question, question_split

KINDS = ("period", "name", "subject")
# A filing in a series: "2023 Q1 INTC" (year, quarter, subject code).
_SERIES_NAME = re.compile(r"^(?P<year>(?:19|20)\d\d)\s+Q(?P<quarter>[1-4])\s+(?P<code>\S.*)$")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_ORDINAL_NAMES = {n: word for word, n in _ORDINALS.items()}
# How questions name a quarter: "Q1 2023", "the first quarter of 2023".
_QUARTER_PHRASE = re.compile(
    r"\b(?:Q(?P<q>[1-4])\s+(?P<year>(?:19|20)\d\d)|"
    r"(?P<ordinal>first|second|third|fourth)\s+quarter(?:\s+of)?\s+(?P<year2>(?:19|20)\d\d))\b",
    re.IGNORECASE,
)
# The quarter with the words that lead to it ("in Q1 2023", "For the Q2 2023", "In the first quarter of 2023,").
_PERIOD_WORD = re.compile(r"Q[1-4]|H[12]|FY\d*|(?:19|20)\d\d", re.IGNORECASE)
_LEAD = r"(?:\b(?:in|for|during|from|as\s+of)\s+)?(?:the\s+)?"
_WORD = re.compile(r"[^\W_](?:[\w&'’.\-]*[^\W_])?")
_POSSESSIVE = re.compile(r"['’]s$")


@dataclass(frozen=True)
class FollowUpPair:
    """An opening question, a follow-up keeping only what changed, its standalone version and gold."""

    kind: str
    first: str
    follow_up: str
    standalone: str
    gold: tuple[str, ...]
    source: str  # the id of the data set question the pair was built from


@dataclass(frozen=True)
class _Filing:
    document: str
    code: str
    year: int
    quarter: int

    @property
    def period(self) -> tuple[int, int]:
        return (self.year, self.quarter)


def _filing(document: str) -> _Filing | None:
    found = _SERIES_NAME.match(PurePosixPath(document).stem)
    if not found:
        return None
    return _Filing(document, found["code"], int(found["year"]), int(found["quarter"]))


def _quarter(match: re.Match[str]) -> tuple[int, int]:
    if match["q"]:
        return (int(match["year"]), int(match["q"]))
    return (int(match["year2"]), _ORDINALS[match["ordinal"].lower()])


def _single_gold(question: Question) -> str | None:
    gold = question.documents or []
    return gold[0] if question.answerable and len(gold) == 1 else None


def _names(text: str) -> list[str]:
    """Words written with a capital inside the sentence, or codes (HIV-1, AHP-9), without a possessive."""
    words = [m.group() for m in _WORD.finditer(text)]
    found = []
    for i, word in enumerate(words):
        base = _POSSESSIVE.sub("", word)
        code = any(c.isdigit() for c in base) and any(c.isalpha() for c in base) and base[0].isalpha()
        if (i > 0 and base[:1].isupper()) or code:
            found.append(base)
    return found


def company_names(dataset: Dataset) -> dict[str, str]:
    """Series code -> the name its questions use for it ("INTC" -> "Intel"): the capitalised word
    found in most questions about the code's filings and in no question about another code's."""
    per_code: dict[str, Counter[str]] = defaultdict(Counter)
    for question in dataset.questions:
        filings = [_filing(d) for d in question.documents or []]
        codes = {f.code for f in filings if f is not None}
        if len(codes) == 1 and question.answerable:
            per_code[codes.pop()].update(set(_names(question.question)))
    names = {}
    for code, counts in per_code.items():
        elsewhere = set().union(*(set(c) for other, c in per_code.items() if other != code))
        own = [(n, w) for w, n in counts.most_common() if w not in elsewhere and not _PERIOD_WORD.fullmatch(w)]
        if own:
            names[code] = own[0][1]
    return names


def _name_span(text: str, name: str) -> re.Match[str] | None:
    return re.search(rf"\b{re.escape(name)}(?P<possessive>['’]s)?\b", text)


def _without_period(text: str, phrase: re.Match[str]) -> str:
    """The question with its quarter taken out: alone where it qualifies the document ("the
    Q1 2023 10-Q" -> "the 10-Q"), else with the words leading to it ("in Q1 2023", "In Q1 2023,")."""
    after = text[phrase.end():]
    if re.match(r"\s+(?:10-[QK]|report|filing)\b", after, re.IGNORECASE):
        start, end = phrase.span()
    else:
        lead = re.compile(_LEAD + re.escape(phrase.group()) + r"\s*,?", re.IGNORECASE)
        found = next((m for m in lead.finditer(text) if m.end() >= phrase.end() and m.start() <= phrase.start()),
                     None)
        if found is not None and found.start() < phrase.start():
            start, end = found.span()
        else:
            start, end = phrase.span()
    out = (text[:start] + " " + text[end:]).strip()
    out = re.sub(r"\s+([,?.])", r"\1", re.sub(r"\s{2,}", " ", out))
    out = re.sub(r",\s*,", ",", out).strip(" ,")
    return out[:1].upper() + out[1:]


def _pronoun_for(text: str, name: str) -> str:
    """`text` with `name` (each time, with a "the" before it) as "it", and "<name>'s" as "its"."""
    def swap(match: re.Match[str]) -> str:
        return "its" if match["possessive"] else "it"

    out = re.sub(rf"\b(?:the\s+)?{re.escape(name)}(?P<possessive>['’]s)?\b", swap, text, flags=re.IGNORECASE)
    return out[:1].upper() + out[1:]


def _is_code(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return any(c.isdigit() for c in word) or (len(letters) >= 2 and all(c.isupper() for c in letters))


def series_pairs(dataset: Dataset) -> list[FollowUpPair]:
    """Period, name and subject pairs from questions naming one filing's company and quarter."""
    filings = {d: f for d in map(dataset.relative_document, dataset.document_files()) if (f := _filing(d))}
    if len(filings) < 2:
        return []
    names = company_names(dataset)
    by_code: dict[str, dict[tuple[int, int], _Filing]] = defaultdict(dict)
    for filing in filings.values():
        by_code[filing.code][filing.period] = filing
    codes = sorted(by_code)
    usable: list[tuple[Question, _Filing, re.Match[str], str]] = []
    for question in dataset.questions:
        gold = _single_gold(question)
        filing = filings.get(gold or "")
        if filing is None or filing.code not in names:
            continue
        phrase = next((m for m in _QUARTER_PHRASE.finditer(question.question) if _quarter(m) == filing.period), None)
        if phrase is not None and _name_span(question.question, names[filing.code]):
            usable.append((question, filing, phrase, names[filing.code]))
    pairs: list[FollowUpPair] = []
    for question, filing, phrase, name in usable:
        text = question.question
        # period: the company's next filing, in date order (round to the first).
        periods = sorted(by_code[filing.code])
        other = by_code[filing.code][periods[(periods.index(filing.period) + 1) % len(periods)]]
        if other is not filing:
            label = f"Q{other.quarter} {other.year}"
            # The standalone question names the quarter the way the data set's question does.
            worded = (label if phrase["q"] else
                      f"{_ORDINAL_NAMES[other.quarter]} quarter of {other.year}")
            standalone = text[:phrase.start()] + worded + text[phrase.end():]
            pairs.append(FollowUpPair("period", text, f"And in {label}?", standalone, (other.document,), question.id))
        # name: the next company (in code order) with a filing for the same quarter.
        for step in range(1, len(codes)):
            code = codes[(codes.index(filing.code) + step) % len(codes)]
            target = by_code[code].get(filing.period)
            if target is not None and code in names:
                span = _name_span(text, name)
                assert span is not None
                standalone = text[:span.start()] + names[code] + (span["possessive"] or "") + text[span.end():]
                pairs.append(FollowUpPair("name", text, f"What about {names[code]}?", standalone,
                                          (target.document,), question.id))
                break
    # subject: the next usable question on the same filing (file order, round to the first).
    on_filing: dict[str, list[tuple[Question, re.Match[str], str]]] = defaultdict(list)
    for question, filing, phrase, name in usable:
        on_filing[filing.document].append((question, phrase, name))
    for document, group in on_filing.items():
        if len(group) < 2:
            continue
        for i, (second, phrase, name) in enumerate(group):
            first = group[(i - 1) % len(group)][0]
            follow_up = _pronoun_for(_without_period(second.question, phrase), name)
            pairs.append(FollowUpPair("subject", first.question, follow_up, second.question, (document,), second.id))
    return pairs


def subject_pairs(dataset: Dataset) -> list[FollowUpPair]:
    """Any set: a question and the one before it on the same gold document (file order) that
    share a name; the second asks with "it"/"its" in place of that name."""
    pairs = []
    last_on: dict[str, Question] = {}
    for question in dataset.questions:
        gold = _single_gold(question)
        if gold is None:
            continue
        first = last_on.get(gold)
        last_on[gold] = question
        if first is None:
            continue
        shared = [n for n in dict.fromkeys(_names(question.question)) if n in set(_names(first.question))]
        shared.sort(key=lambda n: not _is_code(n))  # codes (HIV-1, AHP-9) before capitalised words
        if shared:
            follow_up = _pronoun_for(question.question, shared[0])
            if follow_up != question.question:
                pairs.append(FollowUpPair("subject", first.question, follow_up, question.question, (gold,),
                                          question.id))
    return pairs


def followup_pairs(dataset: Dataset) -> list[FollowUpPair]:
    """The pairs a data set yields: series pairs where its documents form a series, else subject pairs."""
    return series_pairs(dataset) or subject_pairs(dataset)


def spread_pairs(pairs: Sequence[FollowUpPair], n: int) -> list[FollowUpPair]:
    """At most `n` pairs, evenly spaced over the list (pairs come grouped by document)."""
    if n >= len(pairs):
        return list(pairs)
    return [pairs[i * len(pairs) // n] for i in range(n)]


def _source(payload: dict[str, Any]) -> str:
    return str(payload.get("source") or payload.get("file_name") or "")


def measure_followups(
    retriever: Any, condenser: Condenser, collection: str, pairs: Sequence[FollowUpPair], k: int = 5,
) -> dict[str, Any]:
    """hit@k (and hit@1) of each pair's follow-up (rewritten by `condenser` from the opening
    question, as the answer pipeline does), of its standalone version, and of the follow-up
    searched as asked; over all pairs, per kind and per split of the question the pair was built
    from (rules were tuned looking at every pair: the test half is reported apart), one row per pair."""
    rows = []
    for pair in pairs:
        hits, firsts = {}, {}
        for label, text, history in (("standalone", pair.standalone, []),
                                     ("follow_up", pair.follow_up, [pair.first]),
                                     ("as_asked", pair.follow_up, [])):
            trace = Trace(question=text, collection=collection)
            condensed = condense(condenser, text, history, trace)
            found = search(retriever, Query(condensed.standalone, collection, k, k), trace)
            documents = list(dict.fromkeys(_source(c.payload) for c in found.chunks))[:k]
            hits[label] = any(d in pair.gold for d in documents)
            firsts[label] = bool(documents) and documents[0] in pair.gold
            if label == "follow_up":
                searched = condensed.standalone
        rows.append({**asdict(pair), "split": question_split(pair.source), "searched": searched,
                     **{f"hit_{name}": hit for name, hit in hits.items()},
                     **{f"first_{name}": hit for name, hit in firsts.items()}})
    return {"k": k, "pairs": len(rows), "overall": _rates(rows),
            "by_kind": {kind: _rates([r for r in rows if r["kind"] == kind]) for kind in KINDS
                        if any(r["kind"] == kind for r in rows)},
            "by_split": {split: _rates([r for r in rows if r["split"] == split]) for split in SPLITS},
            "rows": rows}


def _rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    labels = ("standalone", "follow_up", "as_asked")
    rates: dict[str, Any] = {"pairs": n}
    for prefix, name in (("hit", "hit@k"), ("first", "hit@1")):
        for label in labels:
            rates[f"{name}_{label}"] = round(sum(r[f"{prefix}_{label}"] for r in rows) / n, 3) if n else None
    return rates
