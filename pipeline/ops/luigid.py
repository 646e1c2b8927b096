"""``python -m pipeline luigid``: luigi's visualiser on this machine, in one command.

Starts the venv's ``luigid`` in the foreground on 127.0.0.1 only (it has no authentication),
with ``config/luigid.cfg`` as its whole configuration (the same as ``luigid.service``) and its
state in the checkout's ``logs/`` (the service keeps it under /var/lib). Ctrl-C stops it. Runs
use it with ``--scheduler-url`` or ``LUIGI_SCHEDULER_URL``, as the last lines say.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline import suggested
from pipeline.checkout import CHECKOUT

ADDRESS = "127.0.0.1"


def command(port: int, state: Path) -> list[str]:
    luigid = Path(sys.executable).with_name("luigid")
    return [str(luigid), "--address", ADDRESS, "--port", str(port), "--state-path", str(state)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline luigid",
        description="Start luigid, the central scheduler and visualiser, on 127.0.0.1 in the "
        "foreground (Ctrl-C stops it), with config/luigid.cfg.",
    )
    parser.add_argument("--port", type=int, default=8082, help="port to listen on (8082)")
    parser.add_argument(
        "--state-path",
        type=Path,
        default=CHECKOUT / "logs" / "luigi-state.pickle",
        help="luigid's task state across restarts (default: logs/ in the checkout)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (1 to 65535)")
    args.state_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{ADDRESS}:{args.port}"
    for line in (
        f"luigid at {url} (the visualiser: open it in a browser); Ctrl-C stops it",
        f"runs use it with: {suggested.command('--scheduler-url', url, in_checkout=True)}",
        f"                  (or LUIGI_SCHEDULER_URL={url} in their environment)",
    ):
        print(f"pipeline: {line}", file=sys.stderr, flush=True)
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(CHECKOUT / "config" / "luigid.cfg")}
    cmd = command(args.port, args.state_path)
    os.execve(cmd[0], cmd, env)  # luigid's own signals and exit status, no Python in between
