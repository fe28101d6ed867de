"""Markdown read as its reader sees it: a link as its text, emphasis without its markers, an
inline HTML tag as nothing, and the headings Markdown underlines ("Title" over "=====").

Help centres exported to Markdown (markdownify, Intercom, Zendesk) write "called **[My
Shortcuts](https://coda.io/shortcuts)**" and underline their headings. Read as written, the address
was part of the sentence a question was compared with and of the answer quoted, and an underlined
FAQ question ("Can I star docs for everyone?" over "-----") was neither a heading nor a section.
"""

from __future__ import annotations

import re

# "[Admin console](https://admin.example.com/(eu) "title")": the address may hold one level of parentheses.
_LINK = re.compile(r"(?<!!)\[([^\[\]\n]+)\]\((?:<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)")
_REFERENCE_LINK = re.compile(r"\[([^\[\]\n]*[^\W\d_][^\[\]\n]*)\]\[[^\[\]\n]*\]")  # "[setup guide][setup]", not "[3][4]"
_AUTOLINK = re.compile(r"<((?:https?|mailto|ftp):[^<>\s]+)>")
_IMAGE = re.compile(r"!\[[^\[\]\n]*\]\([^()\n]*(?:\([^()\n]*\)[^()\n]*)*\)")
# Only HTML's own inline tags ("<kbd>Ctrl</kbd>", "<img src=...>"): "x<y and y>z" or "<Enter>" is text.
_INLINE_HTML = re.compile(
    r"<img\b[^<>]*>|</?(?:a|abbr|b|code|del|em|font|i|ins|kbd|mark|s|small|span|strong|sub|sup|u)\b[^<>]*>",
    re.IGNORECASE,
)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# "**Note:**" reads "Note:"; "*P < 0.05, **P < 0.01, ***P < 0.001" stays as written.
_BOLD = re.compile(r"(?<!\*)\*\*(?![\s*])((?:(?!\*\*).)+?)(?<![\s*])\*\*(?!\*)|(?<![\w_])__(?![\s_])((?:(?!__).)+?)(?<![\s_])__(?![\w_])")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])|(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
# markdownify escapes what Markdown would read as markup: "Doc\_Maker", "\*required".
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ASIDE = 0xF000
_ASIDE_CHARS = re.compile("[\uf021-\uf07e]")
_MARKS = ("[", "*", "_", "`", "<", "\\")


def _bold(match: re.Match[str]) -> str:
    """Bold text as read; a bold label ending in "?" or "!" ("select **Forgot password?** and") is
    quoted, so the sentence reads on past it."""
    text = match.group(1) or match.group(2)
    return f'"{text}"' if text.endswith(("?", "!")) else text


# A setext heading's underline ("=====" for level 1, "-----" for level 2), and a thematic break
# ("---", "***", "* * *", "___") between paragraphs.
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(={2,}|-{2,})[ \t]*$")
THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,2}[.)])\s")
SETEXT_WORDS = 20  # a longer line over "-----" is a paragraph above a rule, not a heading


def readable(text: str) -> str:
    """Inline Markdown as read: links as their text, images and HTML tags left out (a line break
    as a space), bold, emphasis and code without their markers, escaped characters without their
    backslash. Text without such markup is returned as it is."""
    if not any(mark in text for mark in _MARKS):
        return text
    # An escaped character is no markup: kept aside (as a private-use character) until the end;
    # not in a text that holds such characters already (PDF symbol fonts map to them).
    escaped = "\\" in text and not _ASIDE_CHARS.search(text)
    if escaped:
        text = _ESCAPE.sub(lambda m: chr(_ASIDE + ord(m.group(1))), text)
    if "[" in text or "<" in text:
        text = _IMAGE.sub(" ", text)
        for pattern in (_LINK, _REFERENCE_LINK, _AUTOLINK):
            text = pattern.sub(r"\1", text)
        text = _INLINE_HTML.sub("", _LINE_BREAK.sub(" ", text))
    if "`" in text:
        text = _CODE.sub(r"\1", text)
    if "**" in text or "__" in text:
        text = _BOLD.sub(_bold, text)
    if "*" in text or "_" in text:
        text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    return _ASIDE_CHARS.sub(lambda m: chr(ord(m.group(0)) - _ASIDE), text) if escaped else text


def setext_level(line: str, above: str) -> int:
    """1 or 2 when `line` underlines `above` as a heading ("=====" / "-----" under a short line of
    text), else 0: a rule under a blank line, a list item or a long paragraph heads nothing."""
    match = SETEXT_UNDERLINE.match(line)
    if match is None:
        return 0
    above = above.strip()
    if not above or above[0] in ">|#" or _LIST_ITEM.match(above) or THEMATIC_BREAK.match(above):
        return 0
    if len(readable(above).split()) > SETEXT_WORDS:
        return 0
    return 1 if match.group(1)[0] == "=" else 2
