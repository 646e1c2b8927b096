"""The command blocks of the user docs, as a reader sees them, and a way to run one as written.

A command block is a fenced block a reader is told to type: ```` ```bash ```` (or ``sh``), or a
transcript, any fenced block whose first line starts with ``$ `` (commands after ``$ ``, each
followed by the output it prints). ``tests/docs/test_commands.py`` registers every block under its
exact text with the test that runs it, so a command changed in the docs without its test fails.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

#: The pages a user reads: the landing page and everything under docs/.
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    text: str  # the block's content, as written, without the fences

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def commands(self) -> list[str]:
        """The logical command lines: a ``\\`` at a line's end joins the next; comments go."""
        lines, joined = [], ""
        for raw in self.transcript_commands() or self.text.splitlines():
            line = raw.rstrip()
            if not joined and (not line.strip() or line.lstrip().startswith("#")):
                continue
            joined += line[:-1] + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                lines.append(strip_comment(joined).strip())
                joined = ""
        return lines

    def transcript_commands(self) -> list[str]:
        return [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]

    def transcript(self) -> list[tuple[str, str]]:
        """(command, the output shown after it) pairs of a transcript."""
        pairs: list[tuple[str, list[str]]] = []
        for line in self.text.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        return [(cmd, "\n".join(out).strip("\n") + "\n") for cmd, out in pairs]


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``  # comment`` (a ``#`` inside quotes stays)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def command_blocks(pages: list[Path] = PAGES) -> list[Block]:
    found = []
    for page in pages:
        text = page.read_text()
        for match in FENCE.finditer(text):
            lang, body = match[1], match[2]
            if lang in ("bash", "sh") or body.startswith("$ "):
                found.append(Block(page, text.count("\n", 0, match.start()) + 1, body))
    return found


def substitute(command: str, subs: dict[str, str]) -> str:
    """``command`` with what stands for another machine (a host name, a path under /srv)
    replaced by its stand-in here; each must be there, or the docs changed under the test."""
    for old, new in subs.items():
        assert old in command, f"{old!r} is no longer in {command!r}"
        command = command.replace(old, new)
    return command


def run_command(
    command: str, env: dict[str, str], cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """One command line through bash, as a user's shell runs it, from the checkout."""
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def user_env(**extra: str) -> dict[str, str]:
    """This machine's environment without the pipeline's and luigi's settings, plus ``extra``;
    the suite's pinned clock stays (``PIPELINE_NOW``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    return {**env, "PIPELINE_NOW": os.environ["PIPELINE_NOW"], **extra}
