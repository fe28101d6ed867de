"""Citation markers: "[1]" or "[1, 2]" after a statement names the numbered sources it rests on.

The one pattern the answerers, the LLM reply parser and the citation check all read.
"""

from __future__ import annotations

import re

MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SEPARATOR = re.compile(r"\s*,\s*")


def marker_numbers(text: str) -> list[int]:
    """Every source number the markers of `text` name, in order of appearance (repeats kept)."""
    return [int(n) for group in MARKER.findall(text) for n in _SEPARATOR.split(group)]
