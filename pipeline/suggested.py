"""The commands the pipeline suggests to an operator, built in one place.

Each is ``run_pipeline.sh`` with the words a user would type: as typed from the working
directory (``script``) where the command line says what to do next, and as typed in the checkout
(``./run_pipeline.sh``) in what a task says (a failure's hint, an e-mail, a log read elsewhere,
where the working directory means nothing). A resumed run also gets the environment it needs.
The demo names its own command for running again (``RERUN_ENV``): its hour is in another data
root, from another API.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from pipeline.checkout import CHECKOUT

#: The command that runs the failed hour again, when it is not ``run_pipeline.sh --date-hour H``
#: (``python -m pipeline demo`` sets it: its hour is in another data root, from another API).
RERUN_ENV = "PIPELINE_RERUN_COMMAND"


def shown(path: Path) -> str:
    """``path`` as a command typed here takes it: relative when under the working directory."""
    path = Path(path).absolute()
    here = Path.cwd()
    return shlex.quote(str(path.relative_to(here)) if path.is_relative_to(here) else str(path))


def script() -> str:
    """``run_pipeline.sh`` as typed from the working directory."""
    path = shown(CHECKOUT / "run_pipeline.sh")
    return path if path.startswith("/") else f"./{path}"


#: ``run_pipeline.sh`` as typed in the checkout.
IN_CHECKOUT = "./run_pipeline.sh"


def command(*words: str, in_checkout: bool = False) -> str:
    """``run_pipeline.sh WORDS``, each word quoted: as typed from the working directory, or
    with ``in_checkout`` as typed in the checkout."""
    head = IN_CHECKOUT if in_checkout else script()
    return " ".join([head, shlex.join(words)]) if words else head


def run_again(hour: str) -> str:
    """The command that runs a failed ``hour`` again: the demo's own when it set one."""
    return os.environ.get(RERUN_ENV) or command("--date-hour", hour, in_checkout=True)


def try_the_demo() -> str:
    """The hint offered when the API cannot be reached at all."""
    demo = command("demo", in_checkout=True)
    return f"`{demo}` (the whole pipeline offline, against a local demo API)"


#: The environment a resumed run needs as it was: the data root and the API.
RESUME_ENV = ("PIPELINE_DATA_DIR", "PIPELINE_API_URL")


def _resume_env() -> list[str]:
    """``NAME=value`` for each of ``RESUME_ENV`` set now, to put before a resuming command."""
    return [f"{n}={shlex.quote(os.environ[n])}" for n in RESUME_ENV if os.environ.get(n)]


def resume_command(extra: Sequence[str], hour: str, scheduler_url: str | None = None) -> str:
    """The command that runs ``hour`` again as this run was started: it keeps the tasks that
    finished. The hour is named, since the current one may have changed by then. The demo
    says how to run it again (``RERUN_ENV``)."""
    if again := os.environ.get(RERUN_ENV):
        return again
    words, given = [], iter(extra)
    for arg in given:
        if arg == "--date-hour":
            next(given, None)
        elif not arg.startswith("--date-hour="):
            words.append(arg)
    if scheduler_url:
        words += ["--scheduler-url", scheduler_url]
    return " ".join([*_resume_env(), command(*words, "--date-hour", hour)])


def resume_backfill(
    days: int, newest_first: bool, task_limit: int | None, extra: Sequence[str],
    scheduler_url: str | None,
) -> str:  # fmt: skip
    """The backfill command as given: it goes on with the hours still missing."""
    words = ["backfill", "--days", str(days), *(["--newest-first"] if newest_first else [])]
    words += [] if task_limit is None else ["--task-limit", str(task_limit)]
    words += [*extra, *(["--scheduler-url", scheduler_url] if scheduler_url else [])]
    return " ".join([*_resume_env(), command(*words)])
