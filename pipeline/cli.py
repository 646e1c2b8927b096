"""``python -m pipeline [SUBCOMMAND]``: the one entry point for people, systemd and CI.

``run_pipeline.sh`` only bootstraps ``.venv`` and hands over to this. This module parses the
command line and hands each subcommand to the module that does it: ``run`` (the default) to
``runner``, ``rerun``, ``backfill`` and ``demo`` to ``pipeline.ops``, and the delegated ones
(``units``, ``report``, ``prune``, ``status``, ``luigid``, ``bench``) to theirs, with their own
arguments. Importing this module stays light: luigi's runner, the systemd renderer, retention
and the dev tools are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline import config, interrupts
from pipeline.console import CliError, say
from pipeline.ops.backfill import backfill_pipeline
from pipeline.ops.demo import demo
from pipeline.ops.rerun_command import rerun_pipeline
from pipeline.runner import run_pipeline

__all__ = ["CliError", "build_parser", "main", "stoppable_main"]

PROG = "python -m pipeline"


ENVIRONMENT = """\
environment:
  PIPELINE_API_URL      API root (default: [api] base_url)
  PIPELINE_DATA_DIR     data root (default: [paths] data_dir, from the checkout); relative
                        paths here and in DIR/DEST are from the working directory
  LUIGI_SCHEDULER_URL   central scheduler to use when none is given on the command line
  LUIGI_CONFIG_PATH     luigi configuration to read instead of the checkout's luigi.cfg
"""


RUN_HELP = """\
Run `luigi --module pipeline Insights` for one UTC hour, after checking every setting (exit 78
naming each unusable one). The central scheduler is used when one is configured
(--scheduler-url, LUIGI_SCHEDULER_URL, or [core] default_scheduler_url in luigi.cfg), else
--local-scheduler. The console shows each task, progress and the cause of a failure; everything,
tracebacks included, goes to $PIPELINE_DATA_DIR/logs/run-<UTC time>-<pid>.log. The exit code is
luigi's ([retcode]). Any other option goes to luigi, e.g. --api-page-size 100, --no-lock
(`luigi --module pipeline Insights --help-all` lists them).
"""


RERUN_HELP = """\
Rebuild one UTC hour from scratch with the options given, beside the old partition: it runs
into $PIPELINE_DATA_DIR/.<hour>.rerun-<pid>/ while holding the hour's lock (a run of that hour
meanwhile is refused, or finds the old partition complete), and only a complete rebuild
replaces the old partition, in one step (on an s3:// root object by object, the manifest
deleted first and copied last); `latest` is moved if the hour is newer. A failed rebuild leaves
the old partition as it was. Options and exit codes as for `run`.
"""


BACKFILL_HELP = """\
Run the hours of the last --days days (ending with the current UTC hour) that are not complete,
and only those: InsightsRange (luigi's RangeHourly of Insights) finds them in bulk from one
listing of the data root (local or s3://). Each is an ordinary run of its hour; the API's rate
limit ([api] rate_limit_requests) is shared by all of them. --days may not reach past
[housekeeping] retention_hours. Any other option goes to luigi; exit codes as for `run`.
"""


def _units(argv: list[str]) -> int:
    from pipeline.ops import units

    return units.main(argv)


def _prune(argv: list[str]) -> int:
    from pipeline.ops import housekeeping

    return housekeeping.main(argv)


def _report(argv: list[str]) -> int:
    from pipeline.report import summary

    return summary.main(argv)


def _status(argv: list[str]) -> int:
    from pipeline.ops import status

    return status.main(argv)


def _luigid(argv: list[str]) -> int:
    from pipeline.ops import luigid

    return luigid.main(argv)


def _bench(argv: list[str]) -> int:
    from pipeline.devtools import bench  # a dev tool: imported only when asked for

    return bench.main(argv)


#: Subcommands whose arguments (``--help`` included) belong to the module they delegate to.
DELEGATED: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "units": (_units, "render this checkout's systemd units into DEST"),
    "report": (_report, "print the summary of a complete hour; runs nothing"),
    "prune": (_prune, "apply the retention now (try --dry-run first)"),
    "status": (_status, "is the data fresh, which hours are missing (exit 0/1/2/3)"),
    "luigid": (_luigid, "start the visualiser on 127.0.0.1 to watch runs"),
    "bench": (_bench, "benchmark the pipeline at scale (a dev tool)"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Hourly snapshot of a DummyJSON-style shop API into analytics CSVs.\n"
        "Without a SUBCOMMAND: run. `SUBCOMMAND --help` explains each one.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run",
        help="run the pipeline for one UTC hour (the default)",
        allow_abbrev=False,  # luigi's options are passed on: never take one for an abbreviation
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ENVIRONMENT,
    )
    run.add_argument(
        "--date-hour", metavar="YYYY-MM-DDTHH", help="UTC hour to snapshot (default: the current)"
    )
    run.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    run.add_argument("--scheduler-url", metavar="URL", help="central scheduler (luigid) to use")
    rerun = sub.add_parser(
        "rerun",
        help="rebuild one hour beside the old one and swap it in when complete",
        allow_abbrev=False,
        description=RERUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ENVIRONMENT,
    )
    rerun.add_argument(
        "--date-hour", metavar="YYYY-MM-DDTHH", required=True, help="UTC hour to rebuild"
    )
    rerun.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    rerun.add_argument("--scheduler-url", metavar="URL", help="central scheduler (luigid) to use")
    backfill = sub.add_parser(
        "backfill",
        help="run the missing hours of the last days (luigi's RangeHourly)",
        allow_abbrev=False,
        description=BACKFILL_HELP,
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "--days", type=int, default=1, metavar="N", help="days to look back over (default: 1)"
    )
    backfill.add_argument(
        "--newest-first", action="store_true", help="run the most recent missing hours first"
    )
    backfill.add_argument(
        "--task-limit", type=int, metavar="N", help="at most N hours in this run (default: all)"
    )
    backfill.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    backfill.add_argument(
        "--scheduler-url", metavar="URL", help="central scheduler (luigid) to use"
    )
    demo_parser = sub.add_parser(
        "demo",
        help="run the whole pipeline offline against a local demo API",
        allow_abbrev=False,
        # DIR is taken by main, not by argparse: it would take a luigi option's value for it
        usage=f"{PROG} demo [-h] [DIR] [--scheduler-url URL] [LUIGI OPTION ...]",
        description="Serve a generated shop on 127.0.0.1, run the pipeline against it into "
        "DIR (default: data-demo in the checkout), stop the server and show where the outputs "
        "are. Each demo builds its hour from scratch: an hour already in DIR is rebuilt, as "
        "`rerun` does. The scheduler is chosen as for `run`; any other option goes to luigi "
        "(e.g. --workers 2).",
    )
    demo_parser.add_argument(
        "--scheduler-url", metavar="URL", help="central scheduler (luigid) to watch it in"
    )
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] in DELEGATED:
        return DELEGATED[args_in[0]][0](args_in[1:])
    if not args_in or (args_in[0].startswith("-") and args_in[0] not in ("-h", "--help")):
        args_in.insert(0, "run")
    directory = None
    if args_in[0] == "demo" and len(args_in) > 1 and not args_in[1].startswith("-"):
        directory = Path(args_in.pop(1))  # not argparse's: it would take an option's value
    parser = build_parser()
    args, extra = parser.parse_known_args(args_in)
    if args.command not in ("run", "rerun", "demo", "backfill") and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "demo":
            return demo(directory, extra, args.scheduler_url)
        if args.command == "backfill":
            workers = [] if args.workers is None else ["--workers", str(args.workers)]
            return backfill_pipeline(args.days, args.newest_first, args.task_limit,
                                     [*workers, *extra], args.scheduler_url)  # fmt: skip
        own = [("--date-hour", args.date_hour), ("--workers", args.workers)]
        luigi_args = [s for flag, value in own if value is not None for s in (flag, str(value))]
        if args.command == "rerun":
            return rerun_pipeline([*luigi_args, *extra], args.scheduler_url)
        return run_pipeline([*luigi_args, *extra], args.scheduler_url)
    except CliError as exc:
        say(f"error: {exc}")
        return 2
    except config.ConfigError as exc:  # a setting no run can use, found late
        say(f"error: {exc}")
        return config.EXIT_CONFIG


def stoppable_main(argv: Sequence[str] | None = None) -> int:
    """``main`` as ``python -m pipeline`` runs it: SIGINT and SIGTERM stop it with one line
    and exit 130 / 143 (``interrupts``); a run says itself what was stopped (``stopped``)."""
    with interrupts.handling():
        try:
            return main(argv)
        except interrupts.Interrupted as exc:  # outside a run: before it, after it, a rerun
            where = f" {exc.during}" if exc.where or exc.after or exc.forked else ""
            say(f"interrupted (exit {exc.exit_code}) by {exc.name}{where}; run it again to finish")
            return exc.exit_code
