"""Render the systemd units that run this checkout hourly, from ``config/systemd/*.in``.

``python -m pipeline units DEST [--user U] [--data-dir D] [--with-luigid]`` (or
``./run_pipeline.sh units DEST ...``) writes etl-pipeline.service, etl-pipeline.timer and
luigid.service with absolute paths, so the units work whatever the checkout is called.

Before writing, it checks that the service user can read the checkout and run the venv's
Python (``access_problems``): a unit whose user cannot would only fail at its first start. Run
as root it also starts the venv's Python as that user; otherwise it reads the permission bits
on the way (ACLs aside).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

CHECKOUT = Path(__file__).resolve().parents[2]
TEMPLATES = CHECKOUT / "config" / "systemd"
UNITS = ("etl-pipeline.service", "etl-pipeline.timer", "luigid.service")
FAILURE_UNIT = "etl-pipeline-failure@.service"  # rendered with --on-failure only
ON_FAILURE = "OnFailure=etl-pipeline-failure@%n.service"
HOME_DIRS = (Path("/home"), Path("/root"), Path("/run/user"))
# systemd would read `%` as a specifier and split on whitespace; quotes and `$` need care too.
_UNSAFE = re.compile(r"[\s%$\"'\\;]")


@dataclass(frozen=True)
class UnitSettings:
    """What differs between installations."""

    checkout: Path = CHECKOUT
    user: str = ""
    data_dir: Path | None = None  # default: <checkout>/data
    with_luigid: bool = False
    port: int = 8082
    on_failure: tuple[str, ...] = ()  # command (and arguments) run with the hour of a failed run

    @property
    def data_root(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.checkout / "data"


def _under_home(path: Path) -> bool:
    return any(path == home or home in path.parents for home in HOME_DIRS)


def _interpreter(checkout: Path) -> Path | None:
    """Where the venv's python really lives (pyenv puts it under /root or /home)."""
    python = checkout / ".venv" / "bin" / "python"
    return python.resolve() if python.exists() else None


def protect_home(settings: UnitSettings) -> tuple[str, str]:
    """The strongest ProtectHome= the service survives, and why.

    `yes` hides /home, /root and /run/user; that breaks the service if the checkout, the data
    or the venv's interpreter lives there, so then `read-only` (data stays writable through
    ReadWritePaths=, which wins over it for the paths it names).
    """
    used = [settings.checkout, settings.data_root]
    if (python := _interpreter(settings.checkout)) is not None:
        used.append(python)
    inside = [str(p) for p in used if _under_home(p)]
    if not inside:
        return "yes", "Nothing the service needs is under /home, /root or /run/user."
    return "read-only", f"read-only, not yes: the service needs {', '.join(inside)}."


def render(settings: UnitSettings) -> dict[str, str]:
    """Unit file name -> text. Raises ValueError for paths systemd cannot take verbatim."""
    checkout, data_root = settings.checkout, settings.data_root
    for path in (checkout, data_root):
        if not path.is_absolute() or _UNSAFE.search(str(path)):
            raise ValueError(f"need an absolute path without spaces, %, $, quotes: {path}")
    if not settings.user or _UNSAFE.search(settings.user):
        raise ValueError(f"bad user name: {settings.user!r}")
    command = settings.on_failure
    if command and (not command[0].startswith("/") or any(_UNSAFE.search(w) for w in command)):
        raise ValueError(
            f"--on-failure needs an absolute program path and arguments without spaces, %, $, "
            f"quotes or backslashes: {shlex.join(command)}"
        )
    home, why = protect_home(settings)
    url = f"http://127.0.0.1:{settings.port}"
    values = {
        "checkout": str(checkout),
        "data_dir": str(data_root),
        "user": settings.user,
        "port": str(settings.port),
        "protect_home": home,
        "protect_home_why": why,
        "luigid_wants": " luigid.service" if settings.with_luigid else "",
        "luigid_after": " luigid.service" if settings.with_luigid else "",
        "luigid_env": f"\nEnvironment=LUIGI_SCHEDULER_URL={url}" if settings.with_luigid else "",
        "on_failure": " ".join(command),
        "on_failure_line": ON_FAILURE if command else f"#{ON_FAILURE}",
    }
    units = (*UNITS, FAILURE_UNIT) if command else UNITS
    return {
        unit: Template((TEMPLATES / f"{unit}.in").read_text()).substitute(values) for unit in units
    }


def write_units(dest: Path, settings: UnitSettings) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for unit, text in render(settings).items():
        path = dest / unit
        tmp = path.with_name(f".{unit}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)
        os.replace(tmp, path)  # systemd never sees half a unit
        written.append(path)
    return written


def _warnings(settings: UnitSettings) -> list[str]:
    found = []
    try:
        pwd.getpwnam(settings.user)
    except KeyError:
        found.append(f"user {settings.user!r} does not exist on this machine")
    if not settings.data_root.is_dir():
        found.append(
            f"{settings.data_root} does not exist; create it writable by {settings.user} "
            "(ReadWritePaths= fails the service otherwise)"
        )
    if settings.on_failure and not os.access(settings.on_failure[0], os.X_OK):
        found.append(f"--on-failure: {settings.on_failure[0]} is not an executable file here")
    if not (settings.checkout / ".venv" / "bin" / "luigid").exists():
        found.append("no .venv yet: run ./run_pipeline.sh bootstrap as the service user")
    return found


_R, _X = 4, 1  # permission bits, as in the owner/group/other triplets


def _allows(st: os.stat_result, uid: int, gids: set[int], bits: int) -> bool:
    """Do ``st``'s permission bits give ``bits`` to ``uid`` (member of ``gids``)? Root may do
    anything but execute a file no one may execute."""
    if uid == 0:
        return not (bits & _X) or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    shift = 6 if st.st_uid == uid else 3 if st.st_gid in gids else 0
    return (st.st_mode >> shift) & bits == bits


def _describe(path: Path, st: os.stat_result) -> str:
    """``/root (drwx------ root:root)``: the path with its mode and owners, as ``ls -l``."""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{path} ({stat.filemode(st.st_mode)} {owner}:{group})"


def reach_problem(path: Path, uid: int, gids: set[int], bits: int, user: str) -> str | None:
    """Why ``uid`` cannot reach ``path`` with ``bits`` (``_R``, ``_X``): a directory on the way
    it may not search (through symbolic links, as the kernel follows them), or the path itself.
    None when it can."""
    todo = [Path(path).absolute()]
    seen: set[Path] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for parent in reversed(current.parents):
            try:
                st = os.stat(parent)
            except OSError as exc:
                return f"{parent}: {exc.strerror}"
            if not _allows(st, uid, gids, _X):
                return f"{_describe(parent, st)} is not searchable by {user}"
        if current.is_symlink():
            todo.append(current.resolve())
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not _allows(st, uid, gids, bits):
        need = {_R: "readable", _X: "executable", _R | _X: "readable and executable"}[bits]
        return f"{_describe(Path(path).resolve(), st)} is not {need} by {user}"
    return None


def access_problems(settings: UnitSettings) -> list[str]:
    """What keeps the service user from running this checkout (nothing when it can, or when the
    user does not exist here: then ``_warnings`` says so)."""
    try:
        entry = pwd.getpwnam(settings.user)
    except KeyError:
        return []
    uid = entry.pw_uid
    gids = {entry.pw_gid, *os.getgrouplist(entry.pw_name, entry.pw_gid)}
    checkout = settings.checkout
    wanted = [
        (checkout, _R | _X, "the checkout"),
        (checkout / "run_pipeline.sh", _R | _X, "ExecStart="),
        (checkout / "luigi.cfg", _R, "the configuration"),
        (checkout / "pipeline" / "__init__.py", _R, "the code"),
    ]
    python = checkout / ".venv" / "bin" / "python"
    if python.exists():
        wanted.append((python, _X, "the venv's Python"))
    problems = []
    for path, bits, what in wanted:
        if (why := reach_problem(path, uid, gids, bits, settings.user)) is not None:
            problems.append(f"{why} ({what}: {path})")
    if not problems and python.exists() and os.geteuid() == 0 and uid != 0:
        problems += _try_as(entry, sorted(gids), python, checkout)
    return problems


def _try_as(entry: pwd.struct_passwd, gids: list[int], python: Path, checkout: Path) -> list[str]:
    """Run as root: start the venv's Python as the user and import the pipeline, as the service
    will (this also catches what the permission bits do not show: ACLs, mounts)."""
    try:
        result = subprocess.run(
            [str(python), "-c", "import pipeline"], cwd=checkout, user=entry.pw_uid,
            group=entry.pw_gid, extra_groups=gids, capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "LANG": "C.UTF-8"},
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"as {entry.pw_name}, {python} could not be started: {exc}"]
    if result.returncode == 0:
        return []
    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
    return [f"as {entry.pw_name}, `{python} -c 'import pipeline'` failed: {last}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline units",
        description="Write the systemd units that run this checkout hourly (etl-pipeline.service "
        "and .timer, luigid.service for --with-luigid; etl-pipeline-failure@.service with "
        "--on-failure) into DEST, with absolute paths. It "
        "checks first that the service's user can read the checkout and run its Python: a "
        "unit whose user cannot would only fail at its first start.",
    )
    parser.add_argument("dest", type=Path, help="folder to write into, e.g. /etc/systemd/system")
    parser.add_argument("--user", default=pwd.getpwuid(os.geteuid()).pw_name,
                        help="account the services run as (default: you)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path,
                        help="data root; relative to the checkout (default: data)")  # fmt: skip
    parser.add_argument("--with-luigid", action="store_true",
                        help="make the pipeline use (and start) luigid.service")  # fmt: skip
    parser.add_argument("--port", type=int, default=8082, help="luigid port (default 8082)")
    parser.add_argument("--on-failure", metavar="COMMAND",
                        help="also render etl-pipeline-failure@.service, which runs COMMAND "
                        "with the failed hour as its last argument when a run fails, e.g. "
                        "'/usr/local/bin/page-ops etl'")  # fmt: skip
    args = parser.parse_args(argv)
    data_dir = None if args.data_dir is None else Path(os.path.normpath(CHECKOUT / args.data_dir))
    try:
        command = tuple(shlex.split(args.on_failure or ""))
    except ValueError as exc:
        parser.error(f"--on-failure: {exc}")
    settings = UnitSettings(
        user=args.user,
        data_dir=data_dir,
        with_luigid=args.with_luigid,
        port=args.port,
        on_failure=command,
    )
    try:
        render(settings)
    except ValueError as exc:
        parser.error(str(exc))
    if problems := access_problems(settings):
        print(f"error: {args.user} cannot run this checkout; no unit written:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            f"what to do: give {args.user} access to these paths, or clone and bootstrap the "
            f"checkout as {args.user} (its own .venv) and run units from there",
            file=sys.stderr,
        )
        return 1
    written = write_units(args.dest, settings)
    for path in written:
        print(f"wrote {path}")
    for warning in _warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print("next: systemctl daemon-reload && systemctl enable --now etl-pipeline.timer"
          + (" luigid.service" if args.with_luigid else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
