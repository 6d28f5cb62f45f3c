"""The README and the documentation pages say only what holds: every test they name exists, every
page is in the site's nav, and the README's links into docs/ lead somewhere. (CI builds the site
with `mkdocs build --strict`, which checks the links between pages.)"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

DOCS = REPO / "docs"

#: `tests/x/test_y.py`, optionally with `::name` (or `::Class::name`), where the last name may
#: end in `*` (a prefix of test names) or carry a `[param]` id.
TEST_REFERENCE = re.compile(r"\btests/[\w/]+\.py(?:(?:::\w+)+(?:\*|\[[^\]\s`]*\])?)?")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def named_tests() -> list[tuple[str, str]]:
    """(document, reference) for every test named in the README and the pages."""
    found = []
    for document in documents():
        text = document.read_text(encoding="utf-8")
        name = str(document.relative_to(REPO))
        found += [(name, match) for match in sorted(set(TEST_REFERENCE.findall(text)))]
    return found


@cache
def defined_names(path: Path) -> frozenset[str]:
    """Names of the functions and classes defined anywhere in a test module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, kinds))


def missing_part(reference: str) -> str | None:
    """What of `reference` does not exist, or None."""
    path, *names = reference.split("::")
    if not (REPO / path).is_file():
        return f"no file {path}"
    defined = defined_names(REPO / path)
    for name in names:
        name = name.split("[", 1)[0]  # a parametrised case: the function carries the name
        if name.endswith("*"):
            if not any(each.startswith(name[:-1]) for each in defined):
                return f"nothing in {path} starts with {name[:-1]}"
        elif name not in defined:
            return f"no {name} in {path}"
    return None


def test_the_references_are_found() -> None:
    references = [reference for _, reference in named_tests()]
    assert len(references) >= 30
    assert "tests/test_faults.py::test_killed_run_resumes_to_the_same_end[SIGKILL]" in references
    assert "tests/data/sources/test_cats_dogs.py::test_full_disk_*" in references


def test_the_checker_tells_what_is_missing() -> None:
    assert missing_part("tests/test_docs.py::missing_part") is None
    assert missing_part("tests/test_docs.py::test_each_named_test_exists[anything]") is None
    assert missing_part("tests/test_docs.py::missing_*") is None
    assert missing_part("tests/test_docs.py::no_such_function") is not None
    assert missing_part("tests/test_docs.py::no_such_*") is not None
    assert missing_part("tests/no_such_module.py") is not None


@pytest.mark.parametrize(("document", "reference"), named_tests())
def test_each_named_test_exists(document: str, reference: str) -> None:
    missing = missing_part(reference)
    assert missing is None, f"{document} names {reference}: {missing}"


def nav_pages(node: object) -> list[str]:
    """Every page file named in a mkdocs nav (strings, lists and mappings nested)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    return []


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    nav = nav_pages(config["nav"])
    pages = sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md"))
    assert sorted(set(nav)) == pages, "mkdocs.yml's nav and the pages under docs/ differ"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_the_site_is_built_outside_the_repository_files() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    site = config["site_dir"].strip("/")
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert f"/{site}/" in ignored or f"{site}/" in ignored


def test_the_readme_links_to_pages_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)\s#]*)(?:#[^)\s]*)?\)", readme)
    assert len(targets) >= len(list(DOCS.glob("*.md")))
    missing = sorted({target for target in targets if not (REPO / target).exists()})
    assert not missing, f"README.md links to {missing}"
    linked = {target for target in targets if target.endswith(".md")}
    unlinked = sorted(
        str(page.relative_to(REPO))
        for page in DOCS.glob("*.md")
        if str(page.relative_to(REPO)) not in linked
    )
    assert not unlinked, f"README.md does not link to {unlinked}"
