"""The repository explains itself: what code, tests and docs cite is defined in the repository's docs/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
CODE_DOCS: Final = ("docs/entra.md", "docs/sonarqube.md")
# Entra requests (A), quirks (Q), rules (E), validator checks (V); SonarQube behaviours (SQ).
CODE: Final = re.compile(r"\b(SQ\d{1,2}|[AEQV]\d{1,2})\b")
DEFINITION: Final = re.compile(r"^(?:#{2,4} |\| )((?:SQ|[AEQV])\d{1,2})[. ]", re.MULTILINE)
# What lives beside the repository and not in a clone of it: the design notes' and references' section
# marks, their folder and file names. Spelt in pieces, so that this file does not itself cite them.
_SECTION: Final = " \u00a7"
_ABSENT: Final = (
    "design".upper() + _SECTION,
    "reference" + _SECTION,
    "reference" + "/",
    "../" + "sha" + "red",
    "entra-id-provisioning.md",
    "sonarqube-web-api",
)
OUTSIDE: Final = re.compile("|".join(re.escape(name) for name in _ABSENT))


def _texts() -> list[Path]:
    files = [*ROOT.glob("scim_bridge/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    return [*files, *ROOT.glob("docs/*.md"), ROOT / "README.md"]


def _defined() -> set[str]:
    return {
        code for doc in CODE_DOCS for code in DEFINITION.findall((ROOT / doc).read_text(encoding="utf-8"))
    }


def test_every_cited_code_is_defined() -> None:
    """Every quirk or behaviour code anything cites has its entry in docs/entra.md or docs/sonarqube.md."""
    defined = _defined()
    undefined = [
        f"{path.relative_to(ROOT)}:{number}: {code}"
        for path in _texts()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for code in CODE.findall(line)
        if code not in defined
    ]
    assert undefined == []


@pytest.mark.parametrize("path", _texts(), ids=lambda path: str(path.relative_to(ROOT)))
def test_nothing_cites_documents_outside_the_repository(path: Path) -> None:
    """No citation of design notes or references a clone of the repository does not have."""
    if path == Path(__file__).resolve():
        return
    assert OUTSIDE.findall(path.read_text(encoding="utf-8")) == []
