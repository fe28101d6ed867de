"""LLM providers behind one interface, with retries, fallback, cache, token counting and cost."""
