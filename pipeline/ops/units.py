"""Render the systemd units that run this checkout hourly, from ``config/systemd/*.in``.

``python -m pipeline units DEST [--user U] [--data-dir D] [--with-luigid]`` (or
``./run_pipeline.sh units DEST ...``) writes etl-pipeline.service, etl-pipeline.timer and
luigid.service with absolute paths, so the units work whatever the checkout is called.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

CHECKOUT = Path(__file__).resolve().parents[2]
TEMPLATES = CHECKOUT / "config" / "systemd"
UNITS = ("etl-pipeline.service", "etl-pipeline.timer", "luigid.service")
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
    }
    return {
        unit: Template((TEMPLATES / f"{unit}.in").read_text()).substitute(values) for unit in UNITS
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
    if not (settings.checkout / ".venv" / "bin" / "luigid").exists():
        found.append("no .venv yet: run ./run_pipeline.sh bootstrap as the service user")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline units", description=__doc__)
    parser.add_argument("dest", type=Path, help="folder to write into, e.g. /etc/systemd/system")
    parser.add_argument("--user", default=pwd.getpwuid(os.geteuid()).pw_name,
                        help="account the services run as (default: you)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path,
                        help="data root; relative to the checkout (default: data)")  # fmt: skip
    parser.add_argument("--with-luigid", action="store_true",
                        help="make the pipeline use (and start) luigid.service")  # fmt: skip
    parser.add_argument("--port", type=int, default=8082, help="luigid port (default 8082)")
    args = parser.parse_args(argv)
    data_dir = None if args.data_dir is None else Path(os.path.normpath(CHECKOUT / args.data_dir))
    settings = UnitSettings(
        user=args.user, data_dir=data_dir, with_luigid=args.with_luigid, port=args.port
    )
    try:
        written = write_units(args.dest, settings)
    except ValueError as exc:
        parser.error(str(exc))
    for path in written:
        print(f"wrote {path}")
    for warning in _warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print("next: systemctl daemon-reload && systemctl enable --now etl-pipeline.timer"
          + (" luigid.service" if args.with_luigid else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
