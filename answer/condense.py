"""Follow-up questions rewritten to stand alone before retrieval.

In a conversation a person asks "And in Q2 2023?" or "What about its warranty?": search on those
words alone finds nothing useful. A condenser turns such a question into one that carries what
it leans on ("What was Intel's revenue in Q2 2023?") from the earlier questions of the
conversation. A question that stands alone is left as it is.

Two condensers, one contract (`condense(question, history) -> Condensed`):
- `RuleCondenser`, offline: when the new question is short, or starts with a pronoun or with
  "and" / "what about" / "how about", or says "it"/"its"/"they" with no name before it, it takes
  the previous (standalone) question's period, names or content words: a new period or name
  replaces the old one in the previous question; a new subject keeps the old names and period.
- `LLMCondenser`: a short condense prompt through the answerer's provider chain; the rules take
  over when every provider fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.language import stopwords
from core.settings import Settings
from core.types import Usage
from llm.base import LLMRequest, LLMResponse, Message, Provider
from llm.cache import ResponseCache
from llm.chain import ProviderChain
from llm.errors import ProviderError
from llm.pricing import PriceTable
from llm.registry import EXTRACTIVE, answerer_names

RULES = "rules"
# Earlier questions a condenser reads: the ones a follow-up can still lean on.
HISTORY_TURNS = 6

# Openings that continue the previous question ("And in Q2?", "What about its warranty?").
_CUE = re.compile(
    r"^\s*(?:(?:and|but|so|also)\s+(?:what|how)\s+about|what\s+about|how\s+about|what\s+of|"
    r"and|but|also|so|then|plus|same\s+for)\b[\s,]*",
    re.IGNORECASE,
)
# Conjunctions dropped from the front of a rewritten question.
_LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|but|also|so|then|plus)\b[\s,]*", re.IGNORECASE)
_LEAD_PRONOUNS = frozenset(
    {"it", "its", "they", "their", "them", "this", "that", "these", "those", "he", "she", "his", "her"})
_POSSESSIVE_PRONOUNS = frozenset({"its", "their"})
_OBJECT_PRONOUNS = frozenset({"it", "they", "them"})
_PRONOUNS = _POSSESSIVE_PRONOUNS | _OBJECT_PRONOUNS
_QUESTION_WORDS = frozenset({
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were",
    "do", "does", "did", "can", "could", "should", "would", "will", "has", "have", "had"})
SHORT_WORDS = 4  # fewer words than this is a short question

# Periods: "Q1 2023", "first quarter of 2023", "fiscal 2022", "March 2024", "2023".
_YEAR = r"(?:FY\s?)?(?:19|20)\d\d"
_QUARTER = r"(?:Q[1-4]|(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter|H[12]|(?:first|second)\s+half)"
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December)")
_PERIOD = re.compile(
    rf"\b(?:{_QUARTER}(?:\s+(?:of\s+)?(?:fiscal\s+(?:year\s+)?)?{_YEAR})?|"
    rf"(?:{_MONTH}\s+)?(?:fiscal\s+(?:year\s+)?)?{_YEAR})\b",
    re.IGNORECASE,
)
_YEAR_IN = re.compile(rf"\b{_YEAR}\b", re.IGNORECASE)
# Words: letters and digits with inner apostrophes, hyphens, ampersands, dots ("Intel's", "AHP-9", "R&D").
_WORD = re.compile(r"[^\W_](?:[\w&'’.\-/]*[^\W_])?")


@dataclass(frozen=True)
class Condensed:
    """A question and the standalone form retrieval and the answerer get."""

    question: str
    standalone: str
    method: str = RULES  # "rules", or the provider label that rewrote it
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def rewritten(self) -> bool:
        """True when the standalone question differs from the one asked."""
        return self.standalone != self.question


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def base(self) -> str:
        """The word without a possessive 's."""
        return re.sub(r"['’]s$", "", self.text)

    @property
    def possessive(self) -> bool:
        return self.base != self.text


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _period_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PERIOD.finditer(text)]


def _inside(token: _Token, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start <= token.start and token.end <= end for start, end in spans)


def _is_code(word: str) -> bool:
    """A product or ticker code: upper-case letters with digits or several capitals (AHP-9, E07, NVDA)."""
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and word[0].isalpha() and (
        any(c.isdigit() for c in word) or (len(letters) >= 2 and all(c.isupper() for c in letters)))


class _Reading:
    """One question taken apart: words, periods, name runs and content words."""

    def __init__(self, text: str, language: str, initial: bool = True) -> None:
        self.text = text.strip()
        self.language = language
        self.initial = initial  # the text opens a sentence: its first word is capitalised anyway
        self.stop = stopwords(language)
        self.tokens = _tokens(self.text)
        self.periods = _period_spans(self.text)
        self.names = self._name_runs()

    def _name_like(self, index: int) -> bool:
        token = self.tokens[index]
        if _inside(token, self.periods) or token.lower in self.stop or not token.text[0].isupper():
            return False
        # A sentence's first word is capitalised anyway: a name only when it looks like one.
        return index > 0 or not self.initial or token.possessive or _is_code(token.base)

    def _name_runs(self) -> list[list[_Token]]:
        """Runs of consecutive name-like words ("Aurora AHP-9"); a possessive ends its run."""
        runs: list[list[_Token]] = []
        current: list[_Token] = []
        for i, token in enumerate(self.tokens):
            adjacent = bool(current) and self.text[current[-1].end:token.start].strip() == ""
            if self._name_like(i) and (not current or (adjacent and not current[-1].possessive)):
                current.append(token)
                continue
            if current:
                runs.append(current)
            current = [token] if self._name_like(i) else []
        if current:
            runs.append(current)
        return runs

    def name_text(self, run: list[_Token]) -> str:
        return self.text[run[0].start:run[-1].end]

    def names_plain(self) -> list[str]:
        """The names without a trailing possessive, in order, once each."""
        found = [re.sub(r"['’]s$", "", self.name_text(run)) for run in self.names]
        return list(dict.fromkeys(found))

    def period_texts(self) -> list[str]:
        return list(dict.fromkeys(self.text[s:e] for s, e in self.periods))

    def content_words(self) -> list[str]:
        """Words that are neither stopwords nor follow-up cues, in order, once each."""
        words = [t.base for t in self.tokens if t.lower not in self.stop and t.lower not in _LEAD_PRONOUNS]
        return list(dict.fromkeys(words))

    def cue(self) -> re.Match[str] | None:
        return _CUE.match(self.text)

    def remainder(self) -> _Reading:
        """The question without its opening cue and closing punctuation."""
        cue = self.cue()
        rest = self.text[cue.end():] if cue else self.text
        return _Reading(rest.rstrip(" ?!.").strip(), self.language, initial=cue is None)


class RuleCondenser:
    """Rewrites follow-ups with word rules, offline. Cues are English; in other languages only
    short questions count as follow-ups."""

    name = RULES

    def __init__(self, language: str = "english") -> None:
        self.language = language

    def condense(self, question: str, history: Sequence[str] = ()) -> Condensed:
        """The question as it stands alone, built from the earlier questions (oldest first)."""
        question = question.strip()
        previous = self.standalone_history(history)
        if not previous or not self.leans_on_context(question):
            return Condensed(question, question)
        return Condensed(question, self.rewrite(question, previous))

    def standalone_history(self, history: Sequence[str]) -> str:
        """The last earlier question made standalone in turn ("and in Q3?" after "and in Q2?")."""
        standalone = ""
        for past in [h.strip() for h in history[-HISTORY_TURNS:] if h and h.strip()]:
            standalone = self.rewrite(past, standalone) if standalone and self.leans_on_context(past) else past
        return standalone

    def _read(self, text: str) -> _Reading:
        return _Reading(text, self.language)

    def leans_on_context(self, question: str) -> bool:
        """True when the question reads as a follow-up: a cue, a leading pronoun, few words, or
        "it"/"its"/"they"/"their"/"them" with no name before it to refer to."""
        reading = self._read(question)
        words = reading.tokens
        if not words:
            return False
        english = self.language == "english"
        if english and (reading.cue() or words[0].lower in _LEAD_PRONOUNS):
            return True
        if len(words) < SHORT_WORDS:
            own = reading.content_words()
            # "What is E07?" stands alone; "In Q2 2023?", "NVIDIA?" and "How much?" do not.
            return not own or words[0].lower not in _QUESTION_WORDS
        if not english:
            return False
        named_before = False
        for token in words:
            if token.lower in _PRONOUNS and not named_before:
                return True
            named_before = named_before or any(token in run for run in reading.names)
        return False

    def rewrite(self, question: str, previous: str) -> str:
        """`question` completed from `previous` (already standalone)."""
        new, old = self._read(question), self._read(previous)
        rest = new.remainder()
        rest_periods = rest.period_texts()
        rest_names = rest.names_plain()
        own_words = [w for w in rest.content_words()
                     if not any(w in p for p in rest_periods) and not any(w in n.split() for n in rest_names)]
        if not own_words and (rest_periods or rest_names):
            # Only a new period or name: the previous question with it swapped in.
            text = old.text
            if rest_names:
                text = _swap_name(old, rest_names[0])
            if rest_periods:
                text = _swap_period(self._read(text), rest_periods[0])
            return text
        return self._carry(new, old)

    def _carry(self, new: _Reading, old: _Reading) -> str:
        """A new subject: the previous question's first name (into "its"/"it") and period kept;
        with no words of its own ("Why?"), the previous question itself."""
        text = _LEADING_CONJUNCTION.sub("", new.text)
        text = text[:1].upper() + text[1:]
        current = self._read(text)
        if not current.content_words():
            return f"{text} ({old.text})"
        have = text.lower()
        names = [n for n in old.names_plain()[:1] if n.lower() not in have]
        periods = [] if current.periods else [p for p in old.period_texts() if p.lower() not in have]
        if not names and not periods:
            own = {w.lower() for w in current.content_words()}
            carried = [w for w in old.content_words() if w.lower() not in own]
            return f"{text} ({' '.join(carried)})" if carried else text
        if names:
            text, used = _replace_pronoun(current, names[0])
            names = [] if used else names
        if periods:
            text = _append_phrase(text, f"in {' and '.join(periods)}")
        return f"{text} ({names[0]})" if names else text


def _swap_name(old: _Reading, name: str) -> str:
    """The first name of `old` replaced by `name` (keeping a possessive), or `name` added."""
    if not old.names:
        return _append_phrase(old.text, f"for {name}")
    run = old.names[0]
    suffix = run[-1].text[len(run[-1].base):]
    return old.text[:run[0].start] + name + suffix + old.text[run[-1].end:]


def _swap_period(old: _Reading, period: str) -> str:
    """The first period of `old` replaced by `period` (which keeps the old year when it names
    none), or `period` added."""
    if not old.periods:
        return _append_phrase(old.text, f"in {period}")
    start, end = old.periods[0]
    year = _YEAR_IN.search(old.text[start:end])
    if year and not _YEAR_IN.search(period) and not re.fullmatch(_YEAR, period, re.IGNORECASE):
        period = f"{period} {year.group()}"
    return old.text[:start] + period + old.text[end:]


def _replace_pronoun(reading: _Reading, name: str) -> tuple[str, bool]:
    """The first "its"/"their" as "<name>'s", or "it"/"they"/"them" as the name."""
    for token in reading.tokens:
        if token.lower in _POSSESSIVE_PRONOUNS:
            return reading.text[:token.start] + f"{name}'s" + reading.text[token.end:], True
        if token.lower in _OBJECT_PRONOUNS:
            return reading.text[:token.start] + name + reading.text[token.end:], True
    return reading.text, False


def _append_phrase(text: str, phrase: str) -> str:
    """`phrase` added before the closing question mark (or full stop)."""
    body = text.rstrip()
    end = ""
    while body and body[-1] in "?.!":
        end = body[-1] + end
        body = body[:-1].rstrip()
    return f"{body} {phrase}{end or '?'}"


# -- with an LLM ------------------------------------------------------------------------------

CONDENSE_SYSTEM = (
    "You rewrite the last question of a conversation so that it can be understood on its own, "
    "for a search over the user's documents. Use the earlier questions to fill in what it refers "
    "to (the company, product, document, period or subject behind words like 'it', 'its', 'they', "
    "'and in Q2?', 'what about ...'). Keep its meaning and its language; do not answer it. If it "
    "already stands alone, repeat it unchanged. Reply with the question only, on one line."
)
CONDENSE_MAX_TOKENS = 120


def condense_request(question: str, history: Sequence[str]) -> LLMRequest:
    """The condense prompt: the earlier questions, numbered, then the one to rewrite."""
    earlier = "\n".join(f"{i}. {q.strip()}" for i, q in enumerate(history, 1))
    prompt = f"Earlier questions:\n{earlier}\n\nLast question: {question.strip()}\n\nStandalone question:"
    return LLMRequest(system=CONDENSE_SYSTEM, messages=(Message("user", prompt),),
                      max_tokens=CONDENSE_MAX_TOKENS, temperature=0.0)


def parse_condensed(reply: str, question: str) -> str | None:
    """The rewritten question from a reply: its first non-empty line without a label or quotes;
    None when the reply holds none or is far longer than a question."""
    for line in reply.strip().splitlines():
        line = re.sub(r"^\s*(?:standalone\s+question\s*:|question\s*:)\s*", "", line, flags=re.IGNORECASE)
        line = line.strip().strip("\"'“”`").strip()
        if line:
            return line if len(line) <= 3 * len(question) + 300 else None
    return None


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()).rstrip("?.! ") == " ".join(b.lower().split()).rstrip("?.! ")


class LLMCondenser:
    """Rewrites follow-ups with a condense prompt through a provider chain (response cache and
    prices as the answerer has them); the rules answer when every provider fails."""

    def __init__(self, chain: ProviderChain, settings: Settings, fallback: RuleCondenser | None = None,
                 cache: ResponseCache | None = None) -> None:
        self.chain = chain
        self.fallback = fallback or RuleCondenser(settings.language)
        self.prices = PriceTable(settings.price_overrides)
        self.cache = cache

    @property
    def name(self) -> str:
        return ",".join(self.chain.names)

    def condense(self, question: str, history: Sequence[str] = ()) -> Condensed:
        """The question as it stands alone; the earlier questions go into the prompt, oldest first."""
        question = question.strip()
        earlier = [h.strip() for h in history[-HISTORY_TURNS:] if h and h.strip()]
        if not earlier:
            return Condensed(question, question)
        request = condense_request(question, earlier)
        try:
            result = self.chain.run(lambda provider: self._ask(provider, request, question))
        except ProviderError as failure:
            rules = self.fallback.condense(question, earlier)
            return Condensed(question, rules.standalone, RULES, warnings=(
                f"Rewriting the follow-up with the LLM failed ({failure}); used the word rules.",))
        standalone, usage, hit = result.value
        provider = result.provider
        cost = 0.0 if hit else self.prices.cost(provider.model, usage)
        method = provider.label
        if _same(standalone, question) and self.fallback.leans_on_context(question):
            # Small local models often repeat a follow-up as it came: the rules complete it then.
            standalone, method = self.fallback.condense(question, earlier).standalone, RULES
        return Condensed(question, standalone, method, usage, cost, tuple(result.warnings))

    def _ask(self, provider: Provider, request: LLMRequest, question: str) -> tuple[str, Usage, bool]:
        key = ResponseCache.key(provider.name, provider.model, request) if self.cache else None
        cached = self.cache.get(key) if self.cache and key else None
        response: LLMResponse = cached or provider.complete(request)
        standalone = parse_condensed(response.text, question)
        if standalone is None:
            from llm.errors import InvalidOutputError

            raise InvalidOutputError("the reply held no question", provider.label)
        if self.cache and key and cached is None:
            self.cache.put(key, response)
        return standalone, (Usage() if cached else response.usage), cached is not None


Condenser = RuleCondenser | LLMCondenser


def make_condenser(spec: str, settings: Settings) -> Condenser:
    """The condenser for an answerer spec: its LLM providers (extractive left out) when it names
    any that can start, else the word rules."""
    rules = RuleCondenser(settings.language)
    providers = [n for n in answerer_names(spec) if n.lower() != EXTRACTIVE]
    if not providers:
        return rules
    try:
        chain = ProviderChain.from_spec(",".join(providers), settings)
    except ProviderError:  # no key for any of them: the answerer reports it
        return rules
    cache = ResponseCache(settings.cache_dir / "llm_responses.sqlite", settings.llm_cache_ttl_s)
    return LLMCondenser(chain, settings, rules, cache)


def timed_condense(condenser: Condenser, question: str, history: Sequence[str]) -> tuple[Condensed, float]:
    """condense() and the milliseconds it took."""
    started = time.perf_counter()
    condensed = condenser.condense(question, history)
    return condensed, (time.perf_counter() - started) * 1000
