"""Every relative link of the user docs leads to a file, every ``#anchor`` to a heading, and every
page under docs/ can be reached from the README (``tests/docs/links.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import PAGES
from tests.docs.links import anchors, links, problems, slug
from tests.support import REPO

README = REPO / "README.md"


def test_every_link_of_the_docs_leads_somewhere_and_every_page_is_reached() -> None:
    assert problems(PAGES, REPO, README) == []


def test_the_docs_are_the_readme_and_pages_under_docs_that_it_links() -> None:
    """What the check above covers: the landing page and the docs/ pages, linked from it."""
    assert PAGES[0] == README and len(PAGES) > 5
    linked = {link.resolve()[0] for link in links(README) if not link.external}
    assert {p.resolve() for p in PAGES[1:]} & linked, "the README links no page of docs/"
    assert (REPO / "docs" / "img" / "report.png").resolve() in linked  # the picture is there


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Install the hourly timer (systemd)", "install-the-hourly-timer-systemd"),
        ("Is it healthy?", "is-it-healthy"),
        ("The API's limit", "the-apis-limit"),
        ("Fill the gaps: backfill", "fill-the-gaps-backfill"),
        ("Scaling: clean + insights at 100k", "scaling-clean--insights-at-100k"),
        ("`luigid` and **the** [visualiser](x.md)", "luigid-and-the-visualiser"),
        ("snake_case — dash-ed", "snake_case--dash-ed"),
        ("Données à l'heure", "données-à-lheure"),
    ],
)
def test_anchors_are_githubs_slugs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def write(root: Path, files: dict[str, str]) -> list[Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return [root / name for name in files if name.endswith(".md")]


def test_a_planted_broken_link_anchor_or_orphan_page_is_named(tmp_path: Path) -> None:
    pages = write(tmp_path, {
        "README.md": (
            "# Top\n\n[ok](docs/a.md#the-part) and [gone](docs/gone.md) and ![pic](docs/p.png)\n"
            "and [nowhere](docs/a.md#no-such-part), [self](#top), [site](https://example.com)\n"
            "and `[in code](docs/also-gone.md)`\n\n```bash\n[in a block](docs/gone-too.md)\n```\n"
        ),
        "docs/a.md": "# A\n\n## The part\n\n[back](../README.md#top) [code](../x.py#L3)\n",
        "docs/orphan.md": "# Orphan\n\n[a](a.md)\n",
        "docs/p.png": "",
        "x.py": "",
    })  # fmt: skip
    assert problems(pages, tmp_path, tmp_path / "README.md") == [
        "README.md:3: docs/gone.md: no such file docs/gone.md",
        "README.md:4: docs/a.md#no-such-part: no heading of docs/a.md has the anchor",
        "docs/a.md:5: ../x.py#L3: an anchor into a file that has no headings",
        "docs/orphan.md: no link from README.md leads here",
    ]


def test_repeated_headings_get_numbered_anchors_and_code_holds_no_heading(tmp_path: Path) -> None:
    (page,) = write(tmp_path, {
        "p.md": "# Notes\n\n## Run\n\n```bash\n# Not a heading\n```\n\n## Run\n\n## Run\n",
    })  # fmt: skip
    assert anchors(page) == {"notes", "run", "run-1", "run-2"}
