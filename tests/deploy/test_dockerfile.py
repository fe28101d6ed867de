"""The image holds every package the app imports."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_dockerfile_copies_every_package_before_installing():
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    install = text.index("pip install")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text[:install], re.MULTILINE))
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"
