"""LLM-judged answer metrics following RAGAS's published definitions (optional: needs a provider).

- Faithfulness (RAGAS): the judge splits the answer into standalone statements, then decides
  for each statement whether it can be inferred from the retrieved context (verdict 1 or 0).
  Score = statements inferred from the context / statements in the answer.
- Answer relevancy (RAGAS): the judge writes `strictness` (3) questions that the answer would
  answer, and says whether the answer is noncommittal ("I don't know"). Score = mean cosine
  similarity between the embeddings of the generated questions and of the real question, times
  0 when the answer is noncommittal, else 1. Embeddings come from the bundled embedder.

Replies are validated with pydantic; a reply that does not validate is asked for again once with
the problem stated, then the next provider of the chain is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from core.types import Usage
from llm.base import LLMRequest, Message, Provider
from llm.chain import ProviderChain
from llm.errors import InvalidOutputError
from llm.pricing import PriceTable
from llm.prompt import json_object

T = TypeVar("T", bound=BaseModel)

DEFINITIONS = {
    "llm_faithfulness": "RAGAS faithfulness, judged by {judge}: the answer split into standalone "
    "statements; share of statements the judge infers from the retrieved context",
    "answer_relevancy": "RAGAS answer relevancy, judged by {judge}: mean cosine similarity (bundled "
    "embedder) between the question and {n} questions the judge generates from the answer; 0 when "
    "the judge finds the answer noncommittal",
}

SYSTEM = "You evaluate answers of a question-answering system. Reply with one JSON object only, no prose."

STATEMENTS_PROMPT = """Break the answer to the question into standalone statements: each one short, \
self-contained (no pronouns), and together covering every claim of the answer.
Question: {question}
Answer: {answer}
Reply as {{"statements": ["...", "..."]}}."""

VERDICTS_PROMPT = """Context:
{context}

For each statement, decide whether it can be directly inferred from the context above: \
verdict 1 if it can, 0 if it cannot, with a one-sentence reason.
Statements:
{statements}
Reply as {{"verdicts": [{{"statement": "...", "reason": "...", "verdict": 0 or 1}}, ...]}} \
with one verdict per statement, in order."""

RELEVANCY_PROMPT = """Write {n} different questions that the answer below answers, and say whether \
the answer is noncommittal (evasive, vague or "I don't know": 1) or not (0).
Answer: {answer}
Reply as {{"questions": ["...", ...], "noncommittal": 0 or 1}}."""


class Statements(BaseModel):
    statements: list[str]


class Verdict(BaseModel):
    statement: str = ""
    reason: str = ""
    verdict: int = Field(ge=0, le=1)


class Verdicts(BaseModel):
    verdicts: list[Verdict]


class GeneratedQuestions(BaseModel):
    questions: list[str] = Field(min_length=1)
    noncommittal: int = Field(ge=0, le=1)


@dataclass
class JudgeScores:
    """One answer's judged metrics, with what the judging cost."""

    llm_faithfulness: float | None
    answer_relevancy: float | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    statements: list[str] = field(default_factory=list)
    verdicts: list[int] = field(default_factory=list)
    generated_questions: list[str] = field(default_factory=list)


class RagasJudge:
    """RAGAS faithfulness and answer relevancy through our provider chain."""

    def __init__(
        self,
        chain: ProviderChain,
        embed: Callable[[list[str]], Any],
        prices: PriceTable | None = None,
        strictness: int = 3,
    ) -> None:
        self.chain = chain
        self.embed = embed
        self.prices = prices or PriceTable()
        self.strictness = strictness

    @classmethod
    def from_spec(cls, spec: str, settings: Any, embed: Callable[[list[str]], Any]) -> RagasJudge:
        """A judge over providers named like RAG_ANSWERER ("openai", "anthropic,openai")."""
        if "extractive" in [s.strip().lower() for s in spec.split(",")]:
            raise ValueError("the judge must be an LLM provider (openai, cohere, anthropic, local), not 'extractive'")
        return cls(ProviderChain.from_spec(spec, settings), embed, PriceTable(getattr(settings, "price_overrides", None)))

    @property
    def name(self) -> str:
        return ",".join(self.chain.names)

    def definitions(self) -> dict[str, str]:
        return {k: v.format(judge=self.name, n=self.strictness) for k, v in DEFINITIONS.items()}

    def score(self, question: str, answer: str, contexts: list[str]) -> JudgeScores:
        """Both metrics for one non-abstaining answer."""
        scores = JudgeScores(None, None)
        statements = self._ask(STATEMENTS_PROMPT.format(question=question, answer=answer), Statements, scores)
        scores.statements = [s.strip() for s in statements.statements if s.strip()]
        if scores.statements:
            listing = "\n".join(f"{i}. {s}" for i, s in enumerate(scores.statements, 1))
            context = "\n\n".join(contexts) or "(no context)"
            verdicts = self._ask(VERDICTS_PROMPT.format(context=context, statements=listing), Verdicts, scores)
            if len(verdicts.verdicts) != len(scores.statements):
                raise InvalidOutputError(
                    f"the judge gave {len(verdicts.verdicts)} verdicts for {len(scores.statements)} statements")
            scores.verdicts = [v.verdict for v in verdicts.verdicts]
            scores.llm_faithfulness = sum(scores.verdicts) / len(scores.verdicts)
        generated = self._ask(RELEVANCY_PROMPT.format(n=self.strictness, answer=answer), GeneratedQuestions, scores)
        scores.generated_questions = generated.questions
        vectors = np.asarray(self.embed([question, *generated.questions]), dtype=float)
        norms = np.linalg.norm(vectors, axis=1)
        norms[norms == 0] = 1.0
        unit = vectors / norms[:, None]
        similarity = float(np.mean(unit[1:] @ unit[0]))
        scores.answer_relevancy = 0.0 if generated.noncommittal else similarity
        return scores

    def _ask(self, prompt: str, model: type[T], scores: JudgeScores) -> T:
        request = LLMRequest(system=SYSTEM, messages=(Message("user", prompt),), max_tokens=1024, json_output=True)

        def attempt(provider: Provider) -> T:
            current = request
            for tries in range(2):
                response = provider.complete(current)
                scores.usage.input_tokens += response.usage.input_tokens
                scores.usage.output_tokens += response.usage.output_tokens
                scores.cost_usd += self.prices.cost(provider.model, response.usage)
                try:
                    return model.model_validate(json_object(response.text))
                except (ValidationError, InvalidOutputError) as error:
                    if tries == 1:
                        raise InvalidOutputError(
                            f"the judge's reply did not validate ({_short(error)})", provider.label) from error
                    fix = f"Your reply was invalid: {_short(error)}. Reply again with the JSON object only."
                    current = LLMRequest(
                        system=SYSTEM,
                        messages=(*request.messages, Message("assistant", response.text or "(empty)"),
                                  Message("user", fix)),
                        max_tokens=request.max_tokens,
                        json_output=True,
                    )
            raise AssertionError("unreachable")

        return self.chain.run(attempt).value


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300]
