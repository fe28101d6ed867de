"""A help centre's product name, which most of its articles use and many never write, lowers no
article that leaves it out: through the service, from ingestion to the answer."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

ARTICLES = {
    "what-is-coda.md": "# What is Coda?\n\nCoda is a doc that brings words, data and teams together. A Coda doc "
                       "holds pages, tables and buttons. Coda works in your browser and in the Coda apps.\n",
    "pricing.md": "# Plans and pricing\n\nCoda offers Free, Pro and Team plans. The Pro plan costs $10 per Doc "
                  "Maker per month when billed annually.\n",
    "formulas.md": "# Writing formulas\n\nFormulas start with an equals sign. Coda formulas can refer to tables "
                   "and columns by name.\n",
    "packs.md": "# Using Packs\n\nPacks connect your doc to other tools such as Slack and Jira. To add a Pack, "
                "open the Explore panel and click Add to doc. Pack tables refresh every hour by default; you can "
                "change the refresh rate in the Pack settings.\n",
    "offline.md": "# Working offline\n\nDocs you opened recently are available offline in the desktop app. Changes "
                  "you make offline are saved on your device and sync when you are back online.\n",
    "ownership.md": "# Transfer doc ownership\n\nOnly the doc owner can transfer ownership. To transfer "
                    "ownership, open the Share dialog and select Make owner next to the new owner's name.\n",
}


@pytest.fixture
def help_centre(tmp_path):  # noqa: ANN001, ANN201
    from rag.service import RagService

    for name, text in ARTICLES.items():
        (tmp_path / name).write_text(text)
    service = RagService()
    report = service.ingest(sorted(tmp_path.iterdir()), "help")
    assert not report.failed, [f.error for f in report.failed]
    yield service
    service.close()


def test_the_product_name_is_held_by_every_article_of_its_help_centre(help_centre):
    assert help_centre.subjects.terms("help") == {"coda"}  # in 3 of the 6 articles' frequent names
    answer = help_centre.ask("How often do Pack tables refresh in Coda?", "help")
    assert not answer.abstained and "refresh every hour" in answer.text
    assert answer.citations[0].document == "packs.md"
    offline = help_centre.ask("What happens to changes made offline in Coda?", "help")
    assert not offline.abstained and offline.citations[0].document == "offline.md"
    assert help_centre.ask("How do I cancel my Coda subscription?", "help").abstained

    # Fewer than five articles tell nothing of a collection's subject: deleting reads them again.
    for name in ("pricing.md", "formulas.md"):
        help_centre.delete_document("help", name)
    assert help_centre.subjects.terms("help") == frozenset()
    weaker = help_centre.ask("How often do Pack tables refresh in Coda?", "help")
    assert weaker.confidence < answer.confidence
