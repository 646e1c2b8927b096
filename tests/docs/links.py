"""The links of the user docs, as GitHub renders them: where each leads, and what is broken.

A relative link must name a file or folder of the checkout; a ``#anchor`` must be the slug GitHub
gives one of the headings of the page it points to (or of its own page, for ``#anchor`` alone).
Every page under docs/ must be reachable from the README by following links between pages.
Links to other sites (``https:``, ``mailto:``) are not followed: no test reaches the network.
Code (fenced blocks, indented fences in lists, inline spans) holds no links.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

FENCE = re.compile(r"^ *(```|~~~).*?^ *\1\s*$", re.M | re.S)
#: A code span: may run over a line end, never over a blank line.
CODE_SPAN = re.compile(r"(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
#: ``[text](target)`` and ``![alt](target)``, with an optional title: the target is group 1.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    page: Path
    line: int
    target: str  # as written

    def where(self, root: Path) -> str:
        return f"{self.page.relative_to(root)}:{self.line}"

    @property
    def external(self) -> bool:
        return bool(SCHEME.match(self.target))

    def resolve(self) -> tuple[Path, str]:
        """(the file it leads to, the anchor without ``#``, '' for none)."""
        path, _, anchor = self.target.partition("#")
        file = (self.page.parent / unquote(path)).resolve() if path else self.page.resolve()
        return file, unquote(anchor)


def blank_code(text: str) -> str:
    """``text`` with code blocks and code spans blanked out, newlines kept (so lines count)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match[0])

    return CODE_SPAN.sub(blank, FENCE.sub(blank, text))


def links(page: Path) -> list[Link]:
    text = blank_code(page.read_text())
    found = [*INLINE.finditer(text), *REFERENCE.finditer(text)]
    return sorted(
        (Link(page, text.count("\n", 0, m.start()) + 1, m[1]) for m in found),
        key=lambda link: link.line,
    )


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: the rendered text (markup, link targets and images
    gone), lower case, punctuation dropped but ``-`` and ``_``, each space a ``-``."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", heading)  # an image renders no text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link renders its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|_)(\S.*?\S|\S)\1", r"\2", text)
    kept = "".join(
        c for c in text.strip().lower()
        if c in " -_" or unicodedata.category(c)[0] in "LN"
    )  # fmt: skip
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of a markdown page: each heading's slug, a repeated one suffixed -1, -2..."""
    seen: Counter[str] = Counter()
    found = set()
    for match in HEADING.finditer(blank_code_keep_headings(page.read_text())):
        base = slug(match[2])
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def blank_code_keep_headings(text: str) -> str:
    """Fenced blocks blanked (a ``# comment`` in a bash block is no heading); code spans kept,
    since a heading's `code` is part of its text."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)


def problems(pages: list[Path], root: Path, start: Path) -> list[str]:
    """What is wrong with the links of ``pages`` (all under ``root``), and the pages of ``pages``
    that following links from ``start`` never reaches. Empty when all is well."""
    found: list[str] = []
    edges: dict[Path, set[Path]] = {}
    root = root.resolve()
    for page in pages:
        edges[page.resolve()] = set()
        for link in links(page):
            if link.external:
                continue
            file, anchor = link.resolve()
            said = f"{link.where(root)}: {link.target}"
            if not file.is_relative_to(root):
                found.append(f"{said}: leads out of the checkout")
            elif not file.exists():
                found.append(f"{said}: no such file {file.relative_to(root)}")
            elif anchor and file.suffix != ".md":
                found.append(f"{said}: an anchor into a file that has no headings")
            elif anchor and anchor not in anchors(file):
                found.append(f"{said}: no heading of {file.relative_to(root)} has the anchor")
            elif file.suffix == ".md":
                edges[page.resolve()].add(file)
    reached, todo = set(), [start.resolve()]
    while todo:
        page = todo.pop()
        if page not in reached:
            reached.add(page)
            todo += edges.get(page, ())
    found += [
        f"{page.relative_to(root)}: no link from {start.relative_to(root)} leads here"
        for page in sorted(p.resolve() for p in pages)
        if page not in reached
    ]
    return found
