"""Every setting checked before a run schedules or writes anything, and one message for all.

``settings_problems()`` checks each option of ``config.SECTIONS`` against what it declares it
accepts (``allowed=``); ``check_settings()`` adds the hour (against the clock) and the data root,
and raises one ``ConfigError`` naming each bad setting, its value and where it came from
(command line, environment, or which luigi.cfg: ``setting_source``). The run then exits with
``config.EXIT_CONFIG``.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import luigi
import luigi.configuration
from luigi.cmdline_parser import CmdlineParser

from pipeline import clock
from pipeline.config import SECTIONS, ConfigError, Dict, Float, Int, paths, run
from pipeline.luigi_config import config_files


@dataclass(frozen=True)
class Problem:
    """One unusable setting: which, the value given, where it came from, and why."""

    setting: str  # "[api] page_size", "--date-hour"
    value: str
    source: str  # "command line --api-page-size", "environment PIPELINE_API_URL", "luigi.cfg …"
    why: str

    def __str__(self) -> str:
        return f"{self.setting} = {self.value} (from {self.source}): {self.why}"


def _file_setting(section: str, option: str) -> Path | None:
    for path in reversed(config_files()):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        if parser.has_option(section, option):
            return path
    return None


def setting_source(section: str, option: str, param: luigi.Parameter) -> tuple[Any, str]:
    """The value an option gets and where it comes from, in the order the pipeline reads it:
    its environment variable (for the two that have one), the command line, the luigi
    configuration files, the default. A value from outside is the text given, not yet parsed."""
    env = getattr(param, "env", None)
    if env and os.environ.get(env):
        return os.environ[env], f"environment {env}"
    parser = CmdlineParser.get_instance()
    flag = f"{section}_{option}"
    if parser is not None and getattr(parser.known_args, flag, None) is not None:
        return getattr(parser.known_args, flag), f"command line --{flag.replace('_', '-')}"
    config = luigi.configuration.get_config()
    if config.has_option(section, option):
        path = _file_setting(section, option)
        return config.get(section, option), f"{path or 'luigi configuration'}"
    return param._default, "default"


_TYPE_NAMES = {Int: "a whole number", Float: "a number", Dict: "a JSON object"}


def settings_problems() -> list[Problem]:
    """Every option of ``SECTIONS`` whose value does not parse or is not allowed."""
    problems = []
    for cls in SECTIONS:
        section = cls.get_task_family()
        for option, param in cls.get_params():
            raw, source = setting_source(section, option, param)
            shown = repr(raw) if isinstance(raw, str) else str(raw)
            try:
                value = param.normalize(param.parse(raw) if isinstance(raw, str) else raw)
            except (ValueError, TypeError):
                kind = next((n for t, n in _TYPE_NAMES.items() if isinstance(param, t)), "valid")
                problems.append(Problem(f"[{section}] {option}", shown, source, f"is not {kind}"))
                continue
            allowed = getattr(param, "allowed", None)
            why = allowed.problem(value) if allowed is not None else None
            if why:
                problems.append(Problem(f"[{section}] {option}", shown, source, why))
    return problems


def hour_problem(date_hour: datetime, now: datetime | None = None) -> Problem | None:
    """Why ``date_hour`` may not be run (it is later than the current UTC hour), or None."""
    now = clock.now() if now is None else now.astimezone(UTC)
    last = run().last_hour(now)
    if date_hour <= last:
        return None
    return Problem(
        "--date-hour",
        date_hour.strftime("%Y-%m-%dT%H"),
        "the command line",
        f"is in the future: this machine's UTC clock says {now:%Y-%m-%dT%H:%M} ([run] "
        f"clock_skew_minutes = {run().clock_skew_minutes} allows hours up to {last:%Y-%m-%dT%H}); "
        "`latest` would stay on it until then, hiding every run before it",
    )


def data_root_problem(root: Path) -> str | None:
    """Why the data root cannot hold a run (not a directory, not writable), or None.

    Only looks: a missing root is fine when its nearest existing parent is a writable directory,
    since the run creates it.
    """
    existing = root
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link
            return f"data root {root}: {existing} is a broken symbolic link"
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == root else f"cannot be created: {existing} is"
        return f"data root {root} {what} not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == root:
            return f"data root {root} is not writable by this user (uid {os.geteuid()})"
        return f"data root {root} cannot be created: {existing} is not writable"
    return None


def check_settings(date_hour: datetime | None = None, *, data_root: bool = False) -> None:
    """Raise ConfigError naming every bad setting at once; do nothing when all are usable.

    ``date_hour`` is checked against the clock; ``data_root`` also checks that the data root is
    (or can become) a writable directory. Reads only: nothing is created.
    """
    problems = [str(p) for p in settings_problems()]

    def usable(section: str) -> bool:  # luigi cannot make a section with a bad option at all
        return not any(p.startswith(f"[{section}]") for p in problems)

    try:
        clock.now()
    except clock.ClockError as exc:
        problems.append(str(exc))
    else:
        if date_hour is not None and usable("run") and (hour := hour_problem(date_hour)):
            problems.append(str(hour))
    if data_root and usable("paths"):
        source = setting_source("paths", "data_dir", paths.data_dir)[1]
        try:
            root = paths().root()
        except ConfigError as exc:  # a scheme no run can use (gs://, a bad bucket name)
            problems.append(f"{exc} (from {source})")
        else:  # an object store is checked by its first request
            if isinstance(root, Path) and (why := data_root_problem(root)) is not None:
                problems.append(f"{why} (from {source})")
    if problems:
        files = ", ".join(map(str, config_files())) or "no configuration file"
        raise ConfigError(
            f"{len(problems)} setting(s) unusable; nothing was scheduled or written:\n"
            + "".join(f"  {p}\n" for p in problems)
            + f"  (luigi configuration read: {files})"
        )
