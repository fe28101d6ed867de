"""Cost per request from a price table: USD per 1K input and output tokens, per model."""

from __future__ import annotations

from core.types import Usage
from llm.tokens import lookup_by_prefix

# USD per 1K tokens (input, output). Longest matching prefix wins; dated names match their family.
PRICES_PER_1K: dict[str, tuple[float, float]] = {
    "gpt-4": (0.03, 0.06),
    "gpt-4-32k": (0.06, 0.12),
    "gpt-4-turbo": (0.01, 0.03),
    "gpt-4o": (0.0025, 0.01),
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4.1": (0.002, 0.008),
    "gpt-4.1-mini": (0.0004, 0.0016),
    "gpt-4.1-nano": (0.0001, 0.0004),
    "gpt-3.5-turbo": (0.0005, 0.0015),
    "claude-3-opus": (0.015, 0.075),
    "claude-3-sonnet": (0.003, 0.015),
    "claude-3-haiku": (0.00025, 0.00125),
    "claude-3-5-sonnet": (0.003, 0.015),
    "claude-3-5-haiku": (0.0008, 0.004),
    "claude-3-7-sonnet": (0.003, 0.015),
    "claude-sonnet-4": (0.003, 0.015),
    "claude-opus-4": (0.015, 0.075),
    "command-r": (0.00015, 0.0006),
    "command-r-plus": (0.0025, 0.01),
    "command-a": (0.0025, 0.01),
}


class PriceTable:
    """Prices per model, with settings.price_overrides taking precedence over the built-in table."""

    def __init__(self, overrides: dict[str, tuple[float, float]] | None = None) -> None:
        self.prices = {**PRICES_PER_1K, **{k: tuple(v) for k, v in (overrides or {}).items()}}

    def price(self, model: str) -> tuple[float, float] | None:
        """(input, output) USD per 1K tokens, or None for a model without a price (local, say)."""
        found = lookup_by_prefix(self.prices, model)  # type: ignore[arg-type]
        return tuple(found) if found is not None else None  # type: ignore[return-value,arg-type]

    def cost(self, model: str, usage: Usage) -> float:
        """USD for this usage; 0 for unpriced models."""
        price = self.price(model)
        if price is None:
            return 0.0
        return usage.input_tokens / 1000 * price[0] + usage.output_tokens / 1000 * price[1]
