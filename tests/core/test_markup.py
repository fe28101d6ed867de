"""Markdown read as its reader sees it: links as their text, emphasis without markers, underlined headings."""

from __future__ import annotations

import pytest

from core.markup import readable, setext_level


@pytest.mark.parametrize(("written", "read"), [
    ("called **[My Shortcuts](https://coda.io/shortcuts)**.", "called My Shortcuts."),
    ("[use pinning](https://help.coda.io/en/articles/2865511-starred-pinned-docs) instead",
     "use pinning instead"),
    ('see [the guide](https://example.com/a_(b) "Guide") first', "see the guide first"),
    ("read [the guide][guide] and <https://example.com/faq>", "read the guide and https://example.com/faq"),
    ("Starring is for docs of *personal* importance, pinning for __everyone__.",
     "Starring is for docs of personal importance, pinning for everyone."),
    ("Type `=Filter()` in a column.", "Type =Filter() in a column."),
    ('A picture ![Share dialog](images/share.png) <img src="x.png" width="300"> here.', "A picture    here."),
    ("Press <kbd>Ctrl</kbd>+<kbd>S</kbd>.<br>Then P < 0.05 and <Enter>.", "Press Ctrl+S. Then P < 0.05 and <Enter>."),
    ("Select **Forgot password?** and enter your email.", 'Select "Forgot password?" and enter your email.'),
    (r"Only Doc\_Makers can edit \*required\* fields.", "Only Doc_Makers can edit *required* fields."),
])
def test_inline_markdown_reads_as_its_text(written, read):
    assert readable(written) == read


@pytest.mark.parametrize("text", [
    "Patients with a CRP level [14] were excluded (p < 0.05).",
    "if x<y and y>z then",  # a formula, not a tag
    "the snake_case_name and 2 * 3 * 4",
    "footnote* and the other one*",
    "*P < 0.05, **P < 0.01, ***P < 0.001",
    "see [3][4] and [12]",
    r"C:\Users\data and a\b",
])
def test_text_without_markup_is_left_as_written(text):
    assert readable(text) == text


def test_an_underline_makes_the_line_above_a_heading_only_when_it_heads_something():
    assert setext_level("==========", "**Star your docs**") == 1
    assert setext_level("-----", "Can I star docs for everyone?") == 2
    assert setext_level("---", "") == 0  # a rule between paragraphs
    assert setext_level("---", "- a list item") == 0
    assert setext_level("---", "2. a numbered step") == 0
    assert setext_level("---", " ".join(["word"] * 30)) == 0  # a paragraph above a rule
    assert setext_level("Not a rule", "Title") == 0


def test_reading_takes_linear_time_on_unclosed_markup():
    import time

    for text in ("__x " * 20000, "**a " * 20000, "[x](" * 20000, "*a_b " * 20000):
        start = time.perf_counter()
        readable(text)
        assert time.perf_counter() - start < 2.0  # quadratic backtracking took 15 s on the first


def test_a_symbol_fonts_private_characters_are_kept():
    text = "\uf02d 5 \\_ risk"  # a PDF's symbol-font minus, then an escaped underscore
    assert readable(text) == text
