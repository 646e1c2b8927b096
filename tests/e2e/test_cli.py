"""The entry points as a user runs them: ``./run_pipeline.sh``, ``python -m pipeline``, ``luigi``.

Real runs against the local fake API from a working directory outside the checkout; only the
bootstrap of ``run_pipeline.sh`` (creating a venv, installing) is checked against a fake .venv,
since a real one costs a minute and the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from pipeline import clock
from pipeline.devtools.fakeapi import DummyJSONServer
from tests.support import LUIGI, PARTITION, REPO
from tests.support.expected import USER_SUMMARY

pytestmark = pytest.mark.slow

SCRIPT = REPO / "run_pipeline.sh"
UTC_STAMP = "%Y%m%dT%H%M%SZ"
#: A line in config/logging.conf's format (luigi's own default looks nothing like it).
LOG_LINE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} %s +\[[-\w]+\] luigi-interface\S*: "
TASKS = {"ExtractProducts", "CleanProducts", "ExtractUsers", "CleanUsers", "ExtractCarts",
         "CleanCarts", "UserSummary", "CartDetails", "CategorySummary", "HistoryHour",
         "HourReport", "Insights"}  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    return {**base, "PIPELINE_NOW": os.environ["PIPELINE_NOW"], **extra}


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cmd`` and also return its pid (run_pipeline.sh execs Python: the same pid)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), proc.pid


def the_log(logs: Path, pid: int) -> Path:
    """The one run log in ``logs``, named for the run's start (the pinned UTC time) and its
    process id."""
    (log,) = logs.glob("run-*")
    assert log.name == f"run-{clock.now():{UTC_STAMP}}-{pid}.log"
    return log


def console(stderr: str) -> list[str]:
    """The console's lines without their clock times."""
    return [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in stderr.splitlines()]


def outage(url: str, log: Path) -> list[str]:
    """What the console says while a run finds nothing listening at ``url``, from naming its
    log to the last extract's failure: the same from python -m pipeline and plain luigi."""
    host = url.removeprefix("http://")
    first = f"{url}/products?limit=1000&skip=0"
    return [
        f"pipeline: log file: {log}",
        "ExtractProducts started",
        f"WARNING attempt 1 failed, retrying in 0.5s: GET {first}: connection failed: {host} "
        "refused the connection",
        f"WARNING attempt 2 failed, retrying in 1.0s: GET {first}: connection failed: {host} "
        "refused the connection",
        f"ERROR ExtractProducts failed: products: GET {first}: connection failed: {host} refused "
        "the connection (gave up after 3 attempts)",
        f"         what to do: is the API running and listening at {host}? Check "
        "PIPELINE_API_URL / [api] base_url; or try `./run_pipeline.sh demo` (the whole pipeline "
        "offline, against a local demo API)",
        "ExtractUsers started",
        "ERROR ExtractUsers failed: users: not attempted, circuit open: the API stopped "
        "answering earlier in this run",
        "ExtractCarts started",
        "ERROR ExtractCarts failed: carts: not attempted, circuit open: the API stopped "
        "answering earlier in this run",
    ]


@pytest.fixture
def caller(tmp_path: Path) -> Path:
    """A working directory outside the checkout, without any luigi configuration."""
    path = tmp_path / "caller"
    path.mkdir()
    return path


def test_run_from_elsewhere_writes_outputs_and_the_run_log(
    api: DummyJSONServer, caller: Path
) -> None:
    pids = caller.parent / "pids"
    result, pid = run(
        [str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(pids)], caller,
        clean_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR="data"),  # relative: to the caller
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = caller / "data"
    assert os.readlink(data / "latest") == PARTITION
    assert (data / "latest" / "insights" / "user_summary.csv").read_text() == USER_SUMMARY
    assert orjson.loads((data / PARTITION / "manifest.json").read_bytes())["source"] == api.url

    log = the_log(data / "logs", pid)
    lines = log.read_text().splitlines()
    assert lines[:3] == [
        f"# luigi --module pipeline Insights --local-scheduler --date-hour {PARTITION} "
        f"--lock-pid-dir {pids}",
        f"# cwd: {caller}",
        "# scheduler: local (no central scheduler configured)",
    ]
    assert lines[-1] == "# exit code: 0"
    assert "===== Luigi Execution Summary =====" in lines
    # config/logging.conf applied although luigi.cfg names it relative to the checkout:
    assert re.search(LOG_LINE % "INFO", log.read_text(), re.M)
    # The console: the hour's summary on stdout; on stderr a line as each task starts and
    # ends, and how the run ended.
    assert result.stdout.splitlines() == [
        f"Snapshot {PARTITION}: 6 carts, 14 lines, 6 users, 8 products",
        "Sales: $2,163.64 at list prices, $1,951.28 after discounts",
        "Top category: furniture, $799.99 (37.0% of sales)",
        "Change: no earlier complete snapshot to compare with",
        f"Report: {data}/{PARTITION}/report/index.html",
        f"Latest: {data}/latest -> {PARTITION}",
    ]
    said = result.stderr.splitlines()
    assert said[:2] == [
        "pipeline: scheduler: local (no central scheduler configured)",
        f"pipeline: log file: {log}",
    ]
    assert said[-1] == f"pipeline: done (exit 0): {PARTITION} is complete; latest -> {PARTITION}"
    tasks = [re.fullmatch(r"\d\d:\d\d:\d\d (\w+) (started|done in \d+\.\d s)(: .*)?", line)
             for line in said[2:-1]]  # fmt: skip
    assert all(tasks), said
    pairs = [(m[1], m[2][:4]) for m in tasks if m]  # one worker: each task ends before the next
    assert pairs[0::2] == [(task, "star") for task, _ in pairs[1::2]]
    assert pairs[1::2] == [(task, "done") for task, _ in pairs[0::2]]
    assert {task for task, _ in pairs} == TASKS and len(pairs) == 2 * len(TASKS)
    assert "ExtractUsers done in" in result.stderr and ": 6 records, 1 page" in result.stderr
    assert log.stat().st_mode & 0o777 == 0o640
    assert (data / PARTITION).stat().st_mode & 0o777 == 0o750

    # Then report (python -m pipeline) and prune (run_pipeline.sh) on the same local root, from
    # the same folder: report says what the run said; prune keeps `latest`'s hour, however old.
    env = clean_env(PIPELINE_DATA_DIR="data")
    shown, _ = run([sys.executable, "-m", "pipeline", "report"], caller, env)
    assert (shown.returncode, shown.stdout) == (0, result.stdout)
    pruned, _ = run([str(SCRIPT), "prune", "--dry-run", "--retention-hours", "1"], caller, env)
    assert (pruned.returncode, pruned.stdout) == (0, f"would prune 0 item(s) under {data}\n")
    assert pruned.stderr == (
        f"pipeline: keeping old partition {data / PARTITION}: `latest` points to it\n"
    )


def test_a_failed_run_says_why_and_what_to_do_in_a_few_lines_and_the_rest_in_its_log(
    caller: Path,
) -> None:
    url = refused_url()
    result, pid = run(
        [str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(caller.parent / "pids")],
        caller, clean_env(PIPELINE_API_URL=url, PIPELINE_DATA_DIR=str(caller / "data")),
    )  # fmt: skip
    assert result.returncode == 30, result.stdout[-3000:] + result.stderr[-3000:]
    log = the_log(caller / "data" / "logs", pid)
    text = log.read_text()
    assert "This progress looks :( because there were failed tasks" in text
    assert text.count("Traceback (most recent call last):") == 3  # tracebacks: the log only
    assert "Connection refused" in text  # the transport's own words
    assert text.endswith("\n# exit code: 30\n")
    assert not (caller / "data" / "latest").exists()

    assert result.stdout == ""
    assert console(result.stderr) == [
        "pipeline: scheduler: local (no central scheduler configured)",
        *outage(url, log),
        f"pipeline: failed (exit 30): the cause and what to do are above. Details and "
        f"tracebacks: {log}",
    ]


@pytest.mark.parametrize(
    "entry",
    [
        [LUIGI, "--module", "pipeline", "Insights", "--local-scheduler"],
        [sys.executable, "-m", "pipeline", "run"],
    ],
    ids=["luigi", "python-m-pipeline"],
)
def test_retcode_applies_from_any_directory(entry: list[str], caller: Path) -> None:
    """Run outside the checkout, luigi reads the checkout's luigi.cfg, so a failure exits 30
    and the run log is in config/logging.conf's format."""
    args = ["--date-hour", PARTITION, "--api-retries", "0", "--lock-pid-dir", str(caller / "p")]
    env = clean_env(PIPELINE_API_URL=refused_url(), PIPELINE_DATA_DIR=str(caller / "d"))
    result, _ = run([*entry, *args], caller, env)
    assert result.returncode == 30, result.stdout[-3000:] + result.stderr[-3000:]
    (log,) = (caller / "d" / "logs").glob("run-*")
    assert re.search(LOG_LINE % "ERROR", log.read_text(), re.M)


def test_plain_luigi_from_elsewhere_shows_the_console_of_python_m_pipeline(
    caller: Path,
) -> None:
    """The API down: a few lines saying why and what to do; the tracebacks in the run log."""
    url = refused_url()
    result, pid = run(
        [LUIGI, "--module", "pipeline", "Insights", "--local-scheduler", "--date-hour", PARTITION,
         "--lock-pid-dir", str(caller / "p")],
        caller, clean_env(PIPELINE_API_URL=url, PIPELINE_DATA_DIR=str(caller / "data")),
    )  # fmt: skip
    assert result.returncode == 30, result.stdout[-3000:] + result.stderr[-3000:]
    log = the_log(caller / "data" / "logs", pid)
    text = log.read_text()
    assert text.splitlines()[:2] == [
        f"# luigi --module pipeline Insights --local-scheduler --date-hour {PARTITION} "
        f"--lock-pid-dir {caller / 'p'}",
        f"# cwd: {caller}",
    ]
    assert text.count("Traceback (most recent call last):") == 3
    assert "This progress looks :( because there were failed tasks" in text
    assert log.stat().st_mode & 0o777 == 0o640

    assert result.stdout == ""
    assert console(result.stderr) == outage(url, log)  # the same, without the closing line


def test_demo_end_to_end(caller: Path) -> None:
    result, _ = run([str(SCRIPT), "demo", "out"], caller, clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = caller / "out"
    latest = out / "latest"
    assert latest.is_symlink() and (latest / "manifest.json").is_file()
    insights = sorted(p.name for p in (latest / "insights").glob("*.csv"))
    assert insights == ["cart_details.csv", "category_summary.csv", "user_summary.csv"]
    assert result.stdout.endswith(
        f"\nDemo outputs (latest -> {os.readlink(latest)}):\n  {latest}/\n"
        + "".join(f"  {latest}/insights/{name}\n" for name in insights)
        + f"The summary again: {SCRIPT} report --data-dir out\n"
        f"Run the demo again (it rebuilds the hour): {SCRIPT} demo out\n"
    )
    url = re.search(r"^pipeline: demo API at (\S+); data in (\S+)$", result.stderr, re.M)
    assert url and url[2] == str(out)
    assert "pipeline: scheduler: local (no central scheduler configured)" in result.stderr
    (log,) = (out / "logs").glob("run-*.log")
    assert log.read_text().splitlines()[0] == (
        "# luigi --module pipeline Insights --local-scheduler --date-hour "
        f"{os.readlink(latest)} --no-lock"
    )
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url[1]}/carts", timeout=5)  # the demo API was stopped


def test_help_lists_the_shells_and_the_pipelines_subcommands(caller: Path) -> None:
    result, _ = run([str(SCRIPT), "help"], caller, clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ./run_pipeline.sh bootstrap [--test] | test [--fast]")
    assert "  test: ruff, mypy, then pytest" in result.stdout
    assert "usage: python -m pipeline [-h] SUBCOMMAND ..." in result.stdout
    for word in ("run", "demo", "units", "prune", "bench", "PIPELINE_NO_BOOTSTRAP=1"):
        assert word in result.stdout


def test_unknown_subcommand_is_a_usage_error(caller: Path) -> None:
    result, _ = run([str(SCRIPT), "tets"], caller, clean_env())
    assert result.returncode == 2
    assert "invalid choice: 'tets'" in result.stderr


# -- bootstrap, against a fake .venv ------------------------------------------------------------

FAKE_PYTHON = f"""#!/usr/bin/env bash
echo "python $*" >>"$FAKE_LOG"
case "$1 ${{2:-}}" in
    "-m pip")
        echo start >>"$FAKE_LOG"; sleep "${{FAKE_PIP_SLEEP:-0}}"; echo end >>"$FAKE_LOG"
        exit "${{FAKE_PIP_RC:-0}}" ;;
    "-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0 ;;
    "-P -m") echo "cwd=$PWD"; exit "${{FAKE_RC:-0}}" ;;
esac
exec {sys.executable} "$@"
"""

FAKE_TOOL = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
exit "${FAKE_TOOL_RC:-0}"
"""

#: The files that pin each set of dependencies: the runtime, and the runtime with the test tools.
DEPS = {
    "runtime": ("setup.cfg", "pyproject.toml", "requirements.lock"),
    "test": ("setup.cfg", "pyproject.toml", "requirements-test.lock"),
}
PIP = "python -m pip install --quiet --disable-pip-version-check"
INSTALL = {
    "runtime": f"{PIP} -c requirements.lock -e .",
    "test": f"{PIP} -c requirements-test.lock -e .[test]",
}


def stamp_of(checkout: Path, kind: str) -> str:
    """The stamp the script keeps: the set, and the sha256 of its files concatenated in order."""
    files = b"".join((checkout / name).read_bytes() for name in DEPS[kind])
    return f"{kind} {hashlib.sha256(files).hexdigest()}\n"


def write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


class Checkout:
    """A copy of run_pipeline.sh and the dependency files with a fake .venv, up to date with the
    ``installed`` set."""

    def __init__(self, root: Path, installed: str = "runtime") -> None:
        self.root = root / "checkout"
        self.caller = root / "caller"
        self.log = root / "calls.log"
        self.root.mkdir()
        self.caller.mkdir()
        for name in ("run_pipeline.sh", *DEPS["runtime"], *DEPS["test"]):
            shutil.copy2(REPO / name, self.root / name)
        bin_ = self.root / ".venv" / "bin"
        write_exe(bin_ / "python", FAKE_PYTHON)
        write_exe(bin_ / "ruff", FAKE_TOOL)
        write_exe(bin_ / "mypy", FAKE_TOOL.replace("FAKE_TOOL_RC", "FAKE_MYPY_RC"))
        write_exe(bin_ / "pytest", FAKE_TOOL)
        self.stamp.write_text(stamp_of(self.root, installed))

    @property
    def stamp(self) -> Path:
        return self.root / ".venv" / ".deps-sha256"

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.root / "run_pipeline.sh"), *args], cwd=self.caller, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(FAKE_LOG=str(self.log), **env),
        )  # fmt: skip

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        proc = self.start(*args, **env)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def calls(self, prefix: str = "") -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line for line in lines if line.startswith(prefix)]


@pytest.fixture
def co(tmp_path: Path) -> Checkout:
    return Checkout(tmp_path)


def test_hands_over_to_python_in_the_callers_directory(co: Checkout) -> None:
    result = co.run("--date-hour", PARTITION, "--workers", "2", FAKE_RC="30")
    assert result.returncode == 30
    assert co.calls() == [f"python -P -m pipeline --date-hour {PARTITION} --workers 2"]
    assert result.stdout == f"cwd={co.caller}\n"  # not cd'ed: relative paths stay the caller's


@pytest.mark.parametrize("changed", DEPS["runtime"])
def test_bootstrap_installs_only_when_a_dependency_file_changes(co: Checkout, changed: str) -> None:
    assert co.run("bootstrap").returncode == 0
    assert co.calls() == []
    with (co.root / changed).open("a") as fh:
        fh.write("\n# changed\n")
    result = co.run("demo")
    assert result.returncode == 0, result.stderr
    assert co.calls() == [INSTALL["runtime"], "start", "end", "python -P -m pipeline demo"]
    assert "installing the runtime dependencies" in result.stderr
    assert co.stamp.read_text() == stamp_of(co.root, "runtime")
    assert co.run("bootstrap").returncode == 0
    assert len(co.calls("python -m pip")) == 1  # nothing changed since: no install, no network


def test_a_runtime_venv_does_not_care_about_the_test_lock(co: Checkout) -> None:
    with (co.root / "requirements-test.lock").open("a") as fh:
        fh.write("\n# changed\n")
    assert co.run("demo").returncode == 0
    assert co.calls() == ["python -P -m pipeline demo"]


def test_test_adds_the_test_tools_once_and_later_runs_keep_them(co: Checkout) -> None:
    result = co.run("test", "-q")
    assert result.returncode == 0, result.stderr
    assert co.calls() == [INSTALL["test"], "start", "end", "ruff check .",
                          "ruff format --check .", "mypy ", "pytest -q"]  # fmt: skip
    assert co.stamp.read_text() == stamp_of(co.root, "test")
    co.log.unlink()
    for args in (("demo",), ("bootstrap",), ("test",)):  # a plain run does not downgrade it
        assert co.run(*args).returncode == 0
    assert co.calls("python -m pip") == []
    with (co.root / "requirements-test.lock").open("a") as fh:
        fh.write("\n# changed\n")
    assert co.run("demo").returncode == 0  # out of date: the test set again, not the runtime
    assert co.calls("python -m pip") == [INSTALL["test"]]
    assert co.stamp.read_text() == stamp_of(co.root, "test")


def test_bootstrap_with_test_installs_the_test_set(co: Checkout) -> None:
    assert co.run("bootstrap", "--test").returncode == 0
    assert co.calls("python -m pip") == [INSTALL["test"]]
    assert co.stamp.read_text() == stamp_of(co.root, "test")


def test_a_failed_install_is_not_stamped_and_nothing_runs(co: Checkout) -> None:
    co.stamp.write_text("stale\n")
    result = co.run("--date-hour", PARTITION, FAKE_PIP_RC="1")
    assert result.returncode == 1
    assert co.calls("python") == [INSTALL["runtime"]]
    assert co.stamp.read_text() == "stale\n"


def test_bootstrap_creates_a_missing_venv(co: Checkout, tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    write_exe(shim / "python3.11", FAKE_PYTHON)
    shutil.rmtree(co.root / ".venv")
    result = co.run("bootstrap", PATH=f"{shim}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert f"run_pipeline: creating {co.root}/.venv with python3.11" in result.stderr
    assert co.calls("python -m") == [f"python -m venv {co.root}/.venv", INSTALL["runtime"]]
    assert co.stamp.read_text() == stamp_of(co.root, "runtime")


def test_concurrent_bootstraps_install_once(co: Checkout) -> None:
    co.stamp.write_text("stale\n")
    first, second = co.start("bootstrap", FAKE_PIP_SLEEP="1"), co.start("bootstrap")
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    assert co.calls("python -m pip") + co.calls("start") + co.calls("end") == [
        INSTALL["runtime"], "start", "end",
    ]  # fmt: skip


def test_no_bootstrap_mode_refuses_to_install(co: Checkout) -> None:
    co.stamp.write_text("stale\n")
    result = co.run(PIPELINE_NO_BOOTSTRAP="1")
    assert result.returncode == 2
    assert result.stderr == (
        f"run_pipeline: error: PIPELINE_NO_BOOTSTRAP=1 and {co.root}/.venv is missing or out of "
        "date with setup.cfg pyproject.toml requirements.lock; run "
        f"'{co.root}/run_pipeline.sh bootstrap' as the service user\n"
    )
    assert co.calls() == []


def test_test_runs_ruff_mypy_then_pytest_from_the_checkout(tmp_path: Path) -> None:
    co = Checkout(tmp_path, installed="test")
    checks = ["ruff check .", "ruff format --check .", "mypy "]
    assert co.run("test", "-k", "units", "-x").returncode == 0
    assert co.calls() == [*checks, "pytest -k units -x"]
    co.log.unlink()
    assert co.run("test", "--fast", "-q").returncode == 0
    assert co.calls() == [*checks, "pytest -m not slow -q"]
    co.log.unlink()
    assert co.run("test", FAKE_TOOL_RC="1").returncode == 1
    assert co.calls() == ["ruff check ."]
    co.log.unlink()
    assert co.run("test", FAKE_MYPY_RC="1").returncode == 1  # a broken contract: no pytest
    assert co.calls() == checks


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck; .ci/run does)")
    result = subprocess.run(
        [shellcheck, str(SCRIPT), str(REPO / ".ci" / "run")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
