"""Scale-out helpers: a luigid on a free 127.0.0.1 port, and worker processes each in its own
working and temporary directory with its own luigi.cfg, standing in for hosts."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import LUIGI, REPO
from tests.support.s3 import s3_env

#: luigid settings for the tests: a dead worker is noticed after 2 s without a ping and its
#: task retried 1 s later (config/luigid.cfg: 60 s and 300 s), pruning on every get_work.
LUIGID_CFG = """\
[scheduler]
state_path = {state}
record_task_history = false
retry_count = 3
retry_delay = 1
worker_disconnect_delay = 2
prune_on_get_work = true
remove_delay = 600
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def luigid_call(url: str, method: str, **data: Any) -> Any:
    """One call of the JSON API of the luigid at ``url`` (what the visualiser asks)."""
    query = urllib.parse.quote(json.dumps(data))
    with urllib.request.urlopen(f"{url}/api/{method}?data={query}", timeout=10) as resp:
        return json.load(resp)["response"]


def wait_for_luigid(
    url: str, proc: subprocess.Popen[Any], log: str = "", timeout: float = 30
) -> None:
    """Until the luigid at ``url`` answers; fails if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            luigid_call(url, "task_list", status="DONE", upstream_status="", search="")
            return
        except OSError:
            assert proc.poll() is None, log
            assert time.monotonic() < deadline, f"luigid did not answer in {timeout:g} s"
            time.sleep(0.1)


class Luigid:
    """luigid, luigi's central scheduler, on a free local port with its own config and state."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = home / "luigid.cfg"
        cfg.write_text(LUIGID_CFG.format(state=home / "state.pickle"))
        self.log = home / "luigid.log"
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1",
                 "--port", str(self.port)],
                cwd=home, env={**os.environ, "LUIGI_CONFIG_PATH": str(cfg)},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_luigid(self.url, self.proc, str(self.log))

    def call(self, method: str, **data: Any) -> Any:
        return luigid_call(self.url, method, **data)

    def tasks(self, status: str) -> dict[str, dict[str, Any]]:
        return self.call("task_list", status=status, upstream_status="", search="")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Host:
    """One worker process as a host runs it: its own cwd, $TMPDIR, luigi.cfg and pid dir."""

    def __init__(self, home: Path, name: str) -> None:
        self.name, self.home = name, home / name
        self.tmp = self.home / "tmp"
        self.tmp.mkdir(parents=True)
        config = (REPO / "luigi.cfg").read_text()
        logging_conf = REPO / "config" / "logging.conf"
        config = config.replace("config/logging.conf", str(logging_conf))  # the host's install
        (self.home / "luigi.cfg").write_text(config)
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, scheduler: str, date_hour: str, env: dict[str, str], *args: str) -> None:
        cmd = [
            LUIGI, "--module", "pipeline", "Insights", "--scheduler-url", scheduler,
            "--date-hour", date_hour, "--worker-keep-alive", "--worker-wait-interval", "0.2",
            "--worker-wait-jitter", "0.2", "--lock-pid-dir", str(self.home / "pids"), *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=self.home, env={**env, "TMPDIR": str(self.tmp)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip

    def wait(self, timeout: float = 300) -> int:
        assert self.proc is not None
        self.output, _ = self.proc.communicate(timeout=timeout)
        (self.home / "output.log").write_text(self.output)  # kept for a failing test's reader
        return self.proc.returncode

    def ran(self) -> list[str]:
        """Families of the tasks this host's worker ran to completion, in order."""
        return re.findall(r"\) done\s+(\w+)\(", self.output)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def worker_env(endpoint: str, api_url: str, root: str) -> dict[str, str]:
    return s3_env(endpoint, PIPELINE_API_URL=api_url, PIPELINE_DATA_DIR=root)
