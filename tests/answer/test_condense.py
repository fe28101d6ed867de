"""Follow-ups rewritten to stand alone: the word rules, the condense prompt through a provider
chain (and its fallback), the choice between them, and the pipeline's condense stage."""

from __future__ import annotations

import pytest

from answer.condense import (
    RULES,
    LLMCondenser,
    RuleCondenser,
    condense_request,
    make_condenser,
    parse_condensed,
)
from answer.pipeline import condense
from core.settings import Settings
from core.trace import Trace
from core.types import Usage
from llm.base import LLMRequest, LLMResponse, Provider
from llm.cache import ResponseCache
from llm.chain import ProviderChain
from llm.errors import ProviderRequestError

pytestmark = pytest.mark.unit

INTEL_Q1 = "What was Intel's revenue in Q1 2023?"
HEAT_PUMP = "Which refrigerant does the Aurora AHP-9 use?"


@pytest.fixture
def rules() -> RuleCondenser:
    return RuleCondenser()


@pytest.mark.parametrize(("history", "question", "standalone"), [
    # A new period replaces the old one; a quarter alone keeps the old year.
    ([INTEL_Q1], "And in Q2 2023?", "What was Intel's revenue in Q2 2023?"),
    ([INTEL_Q1], "and in Q3?", "What was Intel's revenue in Q3 2023?"),
    ([INTEL_Q1], "In Q2 2023?", "What was Intel's revenue in Q2 2023?"),
    # A new name replaces the old one, keeping the possessive.
    ([INTEL_Q1], "What about NVIDIA?", "What was NVIDIA's revenue in Q1 2023?"),
    ([INTEL_Q1], "How about Microsoft?", "What was Microsoft's revenue in Q1 2023?"),
    (["What does error code E07 mean?"], "And E08?", "What does error code E08 mean?"),
    # A new subject: "its"/"it" become the earlier name; the earlier period is kept.
    ([HEAT_PUMP], "What about its warranty?", "What about Aurora AHP-9's warranty?"),
    ([HEAT_PUMP], "How long is it covered?", "How long is Aurora AHP-9 covered?"),
    ([INTEL_Q1], "What were the key factors influencing its net income?",
     "What were the key factors influencing Intel's net income in Q1 2023?"),
    ([INTEL_Q1], "And what legal issues were reported in its 10-Q?",
     "What legal issues were reported in Intel's 10-Q in Q1 2023?"),
    # No name to carry: the earlier content words are.
    (["What refrigerant does the heat pump use?"], "What about its warranty?",
     "What about its warranty? (refrigerant heat pump use)"),
    # Nothing of its own: the earlier question comes along whole.
    ([INTEL_Q1], "Why?", f"Why? ({INTEL_Q1})"),
    # Follow-ups of follow-ups read against the earlier ones made standalone.
    ([INTEL_Q1, "And in Q2 2023?"], "And in Q3?", "What was Intel's revenue in Q3 2023?"),
    ([INTEL_Q1, "What about NVIDIA?"], "And in Q2 2023?", "What was NVIDIA's revenue in Q2 2023?"),
])
def test_rules_complete_follow_ups(rules, history, question, standalone):
    condensed = rules.condense(question, history)
    assert condensed.standalone == standalone
    assert condensed.rewritten and condensed.method == RULES and condensed.question == question


@pytest.mark.parametrize("question", [
    "What is the warranty period?",
    "How much did Apple spend on R&D in Q2 2023?",
    "What is E08?",  # short, but a question with a name of its own
    "What did Intel report about its debt?",  # "its" after the name it refers to
    "Does the AHP-9 need a filter and how often should it be emptied?",  # "it" after a name
])
def test_questions_that_stand_alone_are_left_unchanged(rules, question):
    condensed = rules.condense(question, [INTEL_Q1, HEAT_PUMP])
    assert condensed.standalone == question and not condensed.rewritten


def test_without_history_nothing_changes(rules):
    assert rules.condense("And in Q2 2023?", []).standalone == "And in Q2 2023?"
    assert rules.condense("And in Q2 2023?", ["", "  "]).standalone == "And in Q2 2023?"


def test_other_languages_only_treat_short_questions_as_follow_ups():
    german = RuleCondenser("german")
    assert german.leans_on_context("Und Q2 2023?")
    assert not german.leans_on_context("Wie hoch war der Umsatz von Intel im Q1 2023?")


# -- the condense prompt ---------------------------------------------------------------------


class ScriptedProvider(Provider):
    """Replies from a list, in order; an exception in the list is raised instead."""

    name = "scripted"

    def __init__(self, replies: list[object], model: str = "gpt-4o-mini") -> None:
        super().__init__(model)
        self.replies = list(replies)
        self.requests: list[LLMRequest] = []

    def _complete_once(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return LLMResponse(text=str(reply), usage=Usage(40, 12))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_the_prompt_lists_earlier_questions_then_the_follow_up():
    request = condense_request("And in Q2?", [INTEL_Q1, "And its margin?"])
    text = request.messages[0].content
    assert "1. " + INTEL_Q1 in text and "2. And its margin?" in text
    assert text.index(INTEL_Q1) < text.index("Last question: And in Q2?")
    assert "standalone" in request.system.lower() or "on its own" in request.system
    assert request.temperature == 0.0 and request.max_tokens <= 200


@pytest.mark.parametrize(("reply", "expected"), [
    ("What was Intel's revenue in Q2 2023?", "What was Intel's revenue in Q2 2023?"),
    ("Standalone question: \"What was Intel's revenue in Q2 2023?\"\n", "What was Intel's revenue in Q2 2023?"),
    ("\n\n  What was Intel's revenue in Q2 2023?\nExplanation: ...", "What was Intel's revenue in Q2 2023?"),
    ("   ", None),
    ("x" * 2000, None),
])
def test_replies_are_read_as_one_question(reply, expected):
    assert parse_condensed(reply, "And in Q2?") == expected


def test_an_llm_rewrites_through_the_chain_with_usage_cost_and_cache(settings, tmp_path):
    provider = ScriptedProvider(["What was Intel's revenue in Q2 2023?"])
    cache = ResponseCache(tmp_path / "cache.sqlite", 3600)
    condenser = LLMCondenser(ProviderChain([provider]), settings, cache=cache)
    first = condenser.condense("And in Q2?", [INTEL_Q1])
    assert first.standalone == "What was Intel's revenue in Q2 2023?"
    assert first.method == "scripted:gpt-4o-mini"
    assert first.usage == Usage(40, 12) and first.cost_usd > 0
    again = condenser.condense("And in Q2?", [INTEL_Q1])  # answered from the cache: no call, no cost
    assert again.standalone == first.standalone and again.usage == Usage() and again.cost_usd == 0
    assert len(provider.requests) == 1
    # No conversation: no call at all.
    assert condenser.condense(INTEL_Q1, []).standalone == INTEL_Q1 and len(provider.requests) == 1


def test_the_next_provider_then_the_rules_take_over(settings):
    failing = ScriptedProvider([ProviderRequestError("server down", "scripted:a")], model="a")
    empty = ScriptedProvider([""], model="b")
    condenser = LLMCondenser(ProviderChain([failing, empty]), settings)
    condensed = condenser.condense("And in Q2 2023?", [INTEL_Q1])
    assert condensed.standalone == "What was Intel's revenue in Q2 2023?"  # the rules' rewrite
    assert condensed.method == RULES
    assert condensed.warnings and "used the word rules" in condensed.warnings[0]

    answering = ScriptedProvider(["What was Intel's revenue in Q2 2023?"], model="c")
    failing = ScriptedProvider([ProviderRequestError("server down", "scripted:a")], model="a")
    condensed = LLMCondenser(ProviderChain([failing, answering]), settings).condense("And in Q2?", [INTEL_Q1])
    assert condensed.method == "scripted:c" and any("server down" in w for w in condensed.warnings)


def test_a_follow_up_repeated_unchanged_is_completed_by_the_rules(settings):
    provider = ScriptedProvider(["and in Q2 2023 ?", "What is the warranty period?"])
    condenser = LLMCondenser(ProviderChain([provider]), settings)
    repeated = condenser.condense("And in Q2 2023?", [INTEL_Q1])
    assert repeated.standalone == "What was Intel's revenue in Q2 2023?" and repeated.method == RULES
    assert repeated.usage == Usage(40, 12)  # the call was made and is counted
    # A question that stands alone, repeated, stays as the LLM gave it.
    alone = condenser.condense("What is the warranty period?", [HEAT_PUMP])
    assert alone.standalone == "What is the warranty period?" and alone.method == "scripted:gpt-4o-mini"


def test_the_answerer_spec_chooses_the_condenser(settings, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(make_condenser("extractive", settings), RuleCondenser)
    # No key for the only provider: the answerer reports it; the rules rewrite.
    assert isinstance(make_condenser("openai,extractive", settings), RuleCondenser)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    condenser = make_condenser("openai,extractive", Settings(home=settings.home))
    assert isinstance(condenser, LLMCondenser) and condenser.name.startswith("openai:")


def test_the_condense_stage_records_the_standalone_question(rules):
    trace = Trace(question="And in Q2 2023?")
    condensed = condense(rules, "And in Q2 2023?", [INTEL_Q1], trace)
    assert trace.standalone_question == condensed.standalone == "What was Intel's revenue in Q2 2023?"
    assert "condense" in trace.timings_ms
    assert trace.to_dict()["standalone_question"] == condensed.standalone

    alone = Trace(question=INTEL_Q1)
    condense(rules, INTEL_Q1, [], alone)
    assert alone.standalone_question == INTEL_Q1 and "condense" not in alone.timings_ms
