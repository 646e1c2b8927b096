"""python -m pipeline: subcommands and their arguments, the scheduler choice, the per-run log.

luigi itself is replaced by a recording function here (tests/e2e/test_cli.py runs it for real),
so every branch is checked in milliseconds and in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import luigi.configuration
import pytest
from luigi.setup_logging import InterfaceLogging

from pipeline import cli, config, logs, runlog, runner
from pipeline.config import CHECKOUT
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.ops import demo as demo_cmd
from pipeline.storage.fs import ObjectPath
from tests.support import FIXTURES, LUIGI


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("PIPELINE_DATA_DIR", "PIPELINE_API_URL", "LUIGI_SCHEDULER_URL"):
        monkeypatch.delenv(name, raising=False)
    umask = os.umask(0o022)  # the CLI sets 027 for the process; give the other tests theirs back
    os.umask(umask)
    yield
    os.umask(umask)


class Recorder:
    """Stands in for ``cli.run_pipeline`` / ``cli.demo`` and remembers how it was called."""

    def __init__(self, rc: int = 0) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.rc = rc

    def __call__(self, *args: object) -> int:
        self.calls.append(args)
        return self.rc


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(cli, "run_pipeline", recorder)
    return recorder


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "luigi_args", "scheduler_url"),
    [
        ([], [], None),
        (["run"], [], None),
        (["--date-hour", "2026-11-25T17", "--workers", "2"],
         ["--date-hour", "2026-11-25T17", "--workers", "2"], None),
        (["run", "--workers=3", "--api-page-size", "100", "--local-scheduler"],
         ["--workers", "3", "--api-page-size", "100", "--local-scheduler"], None),
        (["--scheduler-url", "http://127.0.0.1:8082", "--no-lock"],
         ["--no-lock"], "http://127.0.0.1:8082"),
        (["--date", "2026-11-25T17", "--api-page-size", "-5"],  # luigi's, not an abbreviation
         ["--date", "2026-11-25T17", "--api-page-size", "-5"], None),
    ],
)  # fmt: skip
def test_run_is_the_default_and_passes_luigi_arguments_on(
    ran: Recorder, argv: list[str], luigi_args: list[str], scheduler_url: str | None
) -> None:
    assert cli.main(argv) == 0
    assert ran.calls == [(luigi_args, scheduler_url)]


def test_the_exit_code_is_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "run_pipeline", Recorder(rc=30))
    assert cli.main(["--date-hour", "2026-11-25T17"]) == 30


def test_demo_takes_an_optional_directory_a_scheduler_and_luigis_options(
    monkeypatch: pytest.MonkeyPatch, ran: Recorder
) -> None:
    demo = Recorder()
    monkeypatch.setattr(cli, "demo", demo)
    assert cli.main(["demo"]) == 0
    assert cli.main(["demo", "out"]) == 0
    # an option's value is never taken for DIR
    assert cli.main(["demo", "--api-page-size", "5", "--scheduler-url", "http://127.0.0.1:1"]) == 0
    assert cli.main(["demo", "out", "--workers", "2", "--date-hour=2026-11-25T17"]) == 0
    assert demo.calls == [
        (None, [], None),
        (Path("out"), [], None),
        (None, ["--api-page-size", "5"], "http://127.0.0.1:1"),
        (Path("out"), ["--workers", "2", "--date-hour=2026-11-25T17"], None),
    ]
    assert ran.calls == []


def test_unknown_subcommand_is_a_usage_error(
    ran: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["tets"])
    assert exit_.value.code == 2
    assert "invalid choice: 'tets'" in capsys.readouterr().err
    assert ran.calls == []


def test_help_names_every_subcommand_and_the_environment(
    ran: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in ("run", "demo", "units", "prune", "bench", "PIPELINE_DATA_DIR",
                 "PIPELINE_API_URL", "LUIGI_SCHEDULER_URL"):  # fmt: skip
        assert word in out
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--date-hour" in out and "--scheduler-url" in out and "logs/run-" in out
    assert ran.calls == []


def test_units_and_prune_delegate_with_their_own_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["units", "units-out", "--user", "root"]) == 0  # relative to the cwd
    assert sorted(p.name for p in (tmp_path / "units-out").iterdir()) == [
        "etl-pipeline.service", "etl-pipeline.timer", "luigid.service",
    ]  # fmt: skip
    old = tmp_path / "data" / "2020-01-01T00"
    old.mkdir(parents=True)
    assert cli.main(["prune", "--data-dir", "data", "--dry-run"]) == 0
    assert "would prune 1 item(s)" in capsys.readouterr().out
    assert old.is_dir()
    with pytest.raises(SystemExit) as exit_:
        cli.main(["units", "--help"])
    assert exit_.value.code == 0
    assert "usage: python -m pipeline units" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["units"])  # DEST is required
    assert exit_.value.code == 2


# -- scheduler ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("luigi_args", "flag", "env", "config", "added", "said"),
    [
        ([], None, "", "", ["--local-scheduler"], "local (no central scheduler configured)"),
        (["--local-scheduler"], None, "http://e:1", "http://c:2", [],
         "local (--local-scheduler given)"),
        ([], "http://f:3", "http://e:1", "http://c:2", ["--scheduler-url", "http://f:3"],
         "central (from the command line)"),
        (["--scheduler-host", "h"], None, "http://e:1", "", [], "central (from the command line)"),
        (["--scheduler-url=http://u:4"], None, "http://e:1", "", [],
         "central (from the command line)"),
        ([], None, "http://e:1", "http://c:2", ["--scheduler-url", "http://e:1"],
         "central http://e:1 (LUIGI_SCHEDULER_URL)"),
        ([], None, "", "http://c:2", [], "central http://c:2 (luigi config)"),
    ],
)  # fmt: skip
def test_scheduler_choice(
    luigi_args: list[str], flag: str | None, env: str, config: str, added: list[str], said: str
) -> None:
    assert runner.choose_scheduler(luigi_args, flag, env, config) == (added, said)


@pytest.mark.parametrize(
    ("options", "url"),
    [
        ({}, ""),
        ({"default_scheduler_url": "http://10.0.0.5:8082/"}, "http://10.0.0.5:8082/"),
        ({"default-scheduler-url": "http://10.0.0.6:8082/"}, "http://10.0.0.6:8082/"),
        ({"default_scheduler_host": "sched", "default_scheduler_port": "9000"}, "http://sched:9000"),
        ({"default_scheduler_host": "sched"}, "http://sched:8082"),
    ],
)  # fmt: skip
def test_scheduler_url_from_luigi_config(options: dict[str, str], url: str) -> None:
    config = luigi.configuration.get_config()
    for key, value in options.items():
        config.set("core", key, value)
    try:
        dashes = "-" in "".join(options)  # luigi reads them too, with a DeprecationWarning
        with pytest.warns(DeprecationWarning) if dashes else contextlib.nullcontext():
            assert runner.configured_scheduler_url() == url
    finally:
        for key in options:
            config.remove_option("core", key)


# -- data root and log file ---------------------------------------------------------------------


def test_data_root_follows_the_environment_then_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.data_root([]) == CHECKOUT / "data"
    assert runner.data_root(["--paths-data-dir", "/srv/a"]) == Path("/srv/a")
    assert runner.data_root(["--paths-data-dir=/srv/b", "--workers", "2"]) == Path("/srv/b")
    monkeypatch.setenv("PIPELINE_DATA_DIR", "mine")
    assert runner.data_root(["--paths-data-dir", "/srv/a"]) == tmp_path / "mine"


def test_log_file_name_is_utc_time_and_pid(tmp_path: Path) -> None:
    at = datetime(2001, 9, 9, 1, 46, 40, 500000, tzinfo=UTC)
    assert runlog.log_path(tmp_path, now=at, pid=4242) == (
        tmp_path / "logs" / "run-20010909T014640Z-4242.log"
    )
    assert runlog.log_path(tmp_path).name == f"run-20261125T193000Z-{os.getpid()}.log"  # NOW


def test_with_an_object_store_root_run_logs_and_failed_run_env_stay_on_this_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The systemd failure unit reads ``failed-run.env`` on this host: never in the bucket."""
    root, hour = ObjectPath("shop-data", "etl"), datetime(2026, 11, 25, 17)
    monkeypatch.delenv("PIPELINE_LOG_DIR", raising=False)
    assert runlog.run_log(root).parent == CHECKOUT / "logs"  # the default: the checkout's logs/
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path / "host"))
    log = runlog.new_log(root)
    assert log.parent == tmp_path / "host" and log.is_file()
    env = tmp_path / "host" / "failed-run.env"
    runlog.note_run(root, hour, log)  # under way
    assert env.read_text() == (
        f"PIPELINE_HOUR=2026-11-25T17\nPIPELINE_EXIT_CODE=\nPIPELINE_RUN_LOG={log}\n"
    )
    runlog.note_run(root, hour, log, 30)
    assert env.read_text().splitlines()[1] == "PIPELINE_EXIT_CODE=30"
    runlog.note_run(root, hour, log, 0)  # succeeded: forgotten
    assert sorted(p.name for p in (tmp_path / "host").iterdir()) == [log.name]


def test_a_failed_run_exits_30_says_so_last_and_leaves_no_empty_hour(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The whole command, luigi included, in this process: the API answers 500 to everything."""
    monkeypatch.setattr(InterfaceLogging, "_configured", True)  # keep pytest's logging as it is
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    data = tmp_path / "data"
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data))
    with DummyJSONServer(Dataset.load(FIXTURES)) as api:
        api.add_fault("status", times=None, status=500)
        monkeypatch.setenv("PIPELINE_API_URL", api.url)
        rc = cli.main(["--date-hour", "2026-11-25T17", "--no-lock", "--api-retries", "0"])
    assert rc == 30
    (log,) = (data / "logs").glob("run-*.log")
    assert capfd.readouterr().err.splitlines()[-1] == (
        f"pipeline: failed (exit 30): the cause and what to do are above. Details and "
        f"tracebacks: {log}"
    )
    said = [  # the failures (progress lines, INFO, are caught too when logging lets them by)
        str(r.console_text)
        for r in caplog.records
        if hasattr(r, "console_text") and r.levelno >= logging.ERROR
    ]
    assert [text.split(":")[0] for text in said] == [
        "ExtractProducts failed", "ExtractUsers failed", "ExtractCarts failed",
    ]  # fmt: skip
    assert said[0] == (
        f"ExtractProducts failed: products: GET {api.url}/products?limit=1000&skip=0: HTTP 500 "
        'Internal Server Error: b\'{"message":"injected 500"}\' (gave up after 1 attempt)\n'
        "what to do: the API is failing; rerun the hour: ./run_pipeline.sh --date-hour "
        "2026-11-25T17 once it is healthy"
    )
    assert log.read_text().endswith("\n# exit code: 30\n")
    assert (data / "logs" / "failed-run.env").read_text().splitlines()[1] == "PIPELINE_EXIT_CODE=30"
    assert sorted(p.name for p in data.iterdir()) == ["logs"]  # no hour folder with only .lock


def noisy_run(args: Sequence[str]) -> int:
    """Writes as luigi does: print(), the logging handlers on stderr and on the console, and
    forked workers."""
    print(f"stdout: {' '.join(args)}")
    sys.stderr.write("stderr: from a handler\n")
    sys.stderr.flush()
    record = logging.LogRecord("pipeline.x", logging.ERROR, __file__, 1, "%s", ("boom",), None)
    record.console_text = "the cause\nwhat to do"
    logs.ConsoleHandler().handle(record)
    pid = os.fork()
    if pid == 0:
        os.write(2, b"stderr: from a forked worker\n")
        os._exit(0)
    os.waitpid(pid, 0)
    print("Luigi Execution Summary", flush=True)
    return 30


def test_the_log_gets_everything_and_the_console_stdout_and_the_console_handler(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # As in a real process (pytest swaps in its own): sys.stdout and sys.stderr on fds 1 and 2.
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # noqa: SIM115
    log = tmp_path / "run.log"
    rc = runlog.run_logged(["--module", "pipeline", "Insights", "--local-scheduler"], log,
                        "local (no central scheduler configured)", noisy_run)  # fmt: skip
    assert rc == 30
    lines = log.read_text().splitlines()
    assert lines[:3] == [
        "# luigi --module pipeline Insights --local-scheduler",
        f"# cwd: {tmp_path}",
        "# scheduler: local (no central scheduler configured)",
    ]
    assert lines[-1] == "# exit code: 30"
    # stdout and stderr are two pipes: each keeps its order, not their interleaving
    assert [line for line in lines[3:-1] if line.startswith("stderr")] == [
        "stderr: from a handler", "stderr: from a forked worker",
    ]  # fmt: skip
    assert [line for line in lines[3:-1] if not line.startswith("stderr")] == [
        "stdout: --module pipeline Insights --local-scheduler", "Luigi Execution Summary",
    ]  # fmt: skip
    out, err = capfd.readouterr()
    assert out == "stdout: --module pipeline Insights --local-scheduler\nLuigi Execution Summary\n"
    said, shown = err.splitlines()[:2], err.splitlines()[2:]
    assert said == [
        "pipeline: scheduler: local (no central scheduler configured)",
        f"pipeline: log file: {log}",
    ]
    assert re.fullmatch(r"\d\d:\d\d:\d\d ERROR the cause", shown[0])
    assert shown[1:] == [" " * 9 + "what to do"]
    print("after the run", flush=True)  # the console is ours again, the log closed
    assert capfd.readouterr().out == "after the run\n"
    assert log.read_text().endswith("# exit code: 30\n")
    assert runlog.RUN_LOG_ENV not in os.environ  # set for the run only


def test_console_lines_stay_whole_when_stdout_and_stderr_share_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``... 2>&1 | tee``: a line printed in two writes (``print`` writes the text, then its
    newline) is not cut by a console line written meanwhile, on the console or in the log."""

    def two_writers(args: Sequence[str]) -> int:
        os.write(1, b"Snapshot 2026-11-25T17\nLatest: data/latest -> 2026-11-25T17")
        while fcntl.ioctl(1, termios.FIONREAD, b"\0\0\0\0") != b"\0\0\0\0":
            time.sleep(0.001)  # until the copy of stdout has read the first write
        logs.to_console(logging.getLogger("pipeline.progress"), logging.INFO, "Insights done")
        sys.stderr.write("stderr: a record for the log only")
        sys.stderr.flush()
        os.write(1, b"\n")
        sys.stderr.write(" and its end\n")
        return 0

    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # noqa: SIM115
    logger = logging.getLogger("pipeline.progress")
    monkeypatch.setattr(logger, "handlers", [logs.ConsoleHandler()])
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(logger, "_cache", {})  # isEnabledFor's answers, cached by earlier runs
    shared, log = tmp_path / "console", tmp_path / "run.log"
    saved = os.dup(1), os.dup(2)
    with shared.open("wb") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            assert runlog.run_logged(["Insights"], log, "local", two_writers) == 0
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
    lines = shared.read_text().splitlines()
    assert lines[:2] == ["pipeline: scheduler: local", f"pipeline: log file: {log}"]
    assert sorted(re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines[2:]) == [
        "Insights done", "Latest: data/latest -> 2026-11-25T17", "Snapshot 2026-11-25T17",
    ]  # fmt: skip
    assert sorted(log.read_text().splitlines()[3:-1]) == [
        "Latest: data/latest -> 2026-11-25T17", "Snapshot 2026-11-25T17",
        "stderr: a record for the log only and its end",
    ]  # fmt: skip


def test_an_interrupted_run_says_so_in_its_log_and_gives_the_console_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: Sequence[str]) -> int:
        os.write(1, b"working\n")
        raise KeyboardInterrupt

    log = tmp_path / "run.log"
    with pytest.raises(KeyboardInterrupt):
        runlog.run_logged(["--module", "pipeline", "Insights"], log, "local", interrupted)
    assert log.read_text().splitlines()[-2:] == ["working", "# interrupted: KeyboardInterrupt"]
    os.write(1, b"console\n")
    assert capfd.readouterr().out == "working\nconsole\n"


def test_run_pipeline_chooses_scheduler_and_log_under_the_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(runner, "run_luigi", lambda args: calls.append(list(args)) or 0)
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_DATA_DIR", "rel")
    assert runner.run_pipeline(["--date-hour", "2026-11-25T17"]) == 0
    assert calls == [
        ["--module", "pipeline", "Insights", "--local-scheduler", "--date-hour", "2026-11-25T17"]
    ]
    log, metrics = sorted((tmp_path / "rel" / "logs").iterdir(), key=lambda p: p.suffix)
    assert metrics.name == "etl_pipeline.prom"  # docs/metrics.md; tests/e2e/test_metrics.py
    assert log.name.startswith("run-") and log.name.endswith(f"Z-{os.getpid()}.log")
    assert log.stat().st_mode & 0o777 == 0o640  # umask 027: not world-readable
    monkeypatch.setenv("LUIGI_SCHEDULER_URL", "http://127.0.0.1:8082")
    assert runner.run_pipeline([]) == 0
    assert calls[1] == ["--module", "pipeline", "Insights", "--scheduler-url",
                        "http://127.0.0.1:8082"]  # fmt: skip


def test_a_data_root_that_is_no_directory_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: pytest.fail("luigi must not run"))
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "file"))
    assert cli.main(["--date-hour", "2026-11-25T17"]) == config.EXIT_CONFIG == 78
    assert capsys.readouterr().err.splitlines() == [
        "pipeline: error: 1 setting(s) unusable; nothing was scheduled or written:",
        f"  data root {tmp_path / 'file'} is not a directory (from environment PIPELINE_DATA_DIR)",
        f"  (luigi configuration read: {CHECKOUT / 'luigi.cfg'})",
        "pipeline: refused (exit 78): fix the settings above (docs/settings.md)",
    ]


def test_every_bad_option_is_refused_in_one_message_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: pytest.fail("luigi must not run"))
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    argv = ["--api-page-size", "-5", "--api-concurrency=x", "--date-hour", "2999-01-01T00"]
    assert cli.main(argv) == 78
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "pipeline: error: 3 setting(s) unusable; nothing was scheduled or written:"
    assert lines[1] == "  [api] page_size = '-5' (from command line --api-page-size): must be >= 1"
    assert lines[2] == (
        "  [api] concurrency = 'x' (from command line --api-concurrency): is not a whole number"
    )
    assert lines[3].startswith("  --date-hour = 2999-01-01T00 (from the command line): is in the")
    assert not (tmp_path / "data").exists()


def test_an_hour_that_is_no_hour_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: pytest.fail("luigi must not run"))
    assert cli.main(["--date-hour", "yesterday"]) == 2
    assert capsys.readouterr().err == (
        "pipeline: error: --date-hour 'yesterday' is not a UTC hour like 2026-11-25T17\n"
    )


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (30, 30), ("No task", 1)])
def test_exit_code_as_the_shell_sees_it(code: object, status: int) -> None:
    assert runner.exit_code(SystemExit(code)) == status


# -- demo ---------------------------------------------------------------------------------------


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_demo_serves_its_api_while_the_pipeline_runs_then_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, object] = {}

    def fake_run(extra: Sequence[str], scheduler_url: str | None = None) -> int:
        seen["extra"], seen["scheduler"] = list(extra), scheduler_url
        seen["url"] = url = os.environ["PIPELINE_API_URL"]
        seen["carts"] = get(f"{url}/carts?limit=1")
        data = Path(os.environ["PIPELINE_DATA_DIR"])
        (data / "2026-11-25T17" / "insights").mkdir(parents=True)
        (data / "2026-11-25T17" / "insights" / "user_summary.csv").write_text("x\n")
        (data / "latest").symlink_to("2026-11-25T17")
        return 0

    monkeypatch.setattr(demo_cmd, "run_pipeline", fake_run)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "out", "--date-hour", "2026-11-25T17"]) == 0
    assert seen["extra"] == ["--no-lock", "--date-hour", "2026-11-25T17"]
    assert seen["scheduler"] is None  # chosen as for run
    assert str(seen["url"]).startswith("http://127.0.0.1:")
    assert b'"carts"' in seen["carts"]  # type: ignore[operator]
    with pytest.raises(OSError):
        get(f"{seen['url']}/carts")  # stopped
    out = capsys.readouterr().out
    assert out.endswith(
        "\nDemo outputs (latest -> 2026-11-25T17):\n"
        f"  {tmp_path}/out/latest/\n"
        f"  {tmp_path}/out/latest/insights/user_summary.csv\n"
        f"The summary again: {CHECKOUT}/run_pipeline.sh report --data-dir out\n"
        "Run the demo again (it rebuilds the hour): "
        f"{CHECKOUT}/run_pipeline.sh demo out --date-hour 2026-11-25T17\n"
    )
    assert "PIPELINE_RERUN_COMMAND" not in os.environ  # set for the run only


def test_a_demo_of_an_hour_already_there_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[str], str | None]] = []

    def recorder(name: str) -> object:
        return lambda extra, url: calls.append((name, list(extra), url)) or 0

    monkeypatch.setattr(demo_cmd, "run_pipeline", recorder("run"))
    monkeypatch.setattr(demo_cmd, "rerun_pipeline", recorder("rerun"))
    # no API needed (the test above serves one): what is asked for is which run the demo starts
    monkeypatch.setattr(demo_cmd, "demo_api", lambda: contextlib.nullcontext("http://127.0.0.1:9"))
    monkeypatch.setenv("LUIGI_SCHEDULER_URL", "http://127.0.0.1:1")  # chosen by run/rerun
    assert demo_cmd.demo(tmp_path, ["--date-hour", "2026-11-25T17"]) == 0
    (tmp_path / "2026-11-25T17").mkdir()
    assert demo_cmd.demo(tmp_path, ["--date-hour", "2026-11-25T17"], "http://127.0.0.1:2") == 0
    assert calls == [
        ("run", ["--no-lock", "--date-hour", "2026-11-25T17"], None),
        ("rerun", ["--no-lock", "--date-hour", "2026-11-25T17"], "http://127.0.0.1:2"),
    ]


def test_a_failed_demo_run_keeps_its_exit_code_and_stops_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls: list[str] = []
    monkeypatch.setattr(
        demo_cmd,
        "run_pipeline",
        lambda extra, url: urls.append(os.environ["PIPELINE_API_URL"]) or 30,
    )
    assert demo_cmd.demo(tmp_path / "out") == 30
    with pytest.raises(OSError):
        get(f"{urls[0]}/carts")


def child(code: str, errors: IO[bytes]) -> subprocess.Popen[bytes]:
    """A stand-in for the demo API, started with what ``demo_api`` gives it: a stack dump on
    SIGUSR1."""
    boot = "import faulthandler, signal; faulthandler.register(signal.SIGUSR1); "
    return subprocess.Popen([sys.executable, "-c", boot + code],
                            stdout=subprocess.PIPE, stderr=errors)  # fmt: skip


def test_the_demo_apis_url_is_its_first_serving_line(tmp_path: Path) -> None:
    with open(tmp_path / "errors", "w+b") as errors:
        proc = child("print('loading'); print('serving http://127.0.0.1:5', flush=True); "
                     "import time; time.sleep(60)", errors)  # fmt: skip
        try:
            assert demo_cmd._wait_for_url(proc, errors, timeout=60) == "http://127.0.0.1:5"
        finally:
            demo_cmd._stop(proc)


def test_a_demo_api_that_dies_is_reported_with_its_output(tmp_path: Path) -> None:
    with open(tmp_path / "errors", "w+b") as errors:
        proc = child("import sys; print('starting'); sys.stderr.write('boom: port taken')\n"
                     "raise SystemExit(3)", errors)  # fmt: skip
        with pytest.raises(cli.CliError) as raised:
            demo_cmd._wait_for_url(proc, errors, timeout=60)
    assert str(raised.value) == "demo API exited early (status 3):\nstarting\nboom: port taken"


def test_a_silent_demo_api_is_stopped_and_says_where_it_was(tmp_path: Path) -> None:
    with open(tmp_path / "errors", "w+b") as errors:
        proc = child("import time; print('loading', flush=True); time.sleep(60)", errors)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"loading\n"  # started, and sleeping from now on
        with pytest.raises(cli.CliError) as raised:
            demo_cmd._wait_for_url(proc, errors, timeout=0.01)
    assert str(raised.value) == (
        "demo API did not report its URL within 0.01 s; it was in <module> (<string>:1). Is "
        "the machine overloaded? Try again."
    )
    assert proc.returncode == -signal.SIGTERM  # stopped


# -- import weight ------------------------------------------------------------------------------


def imported(*args: str) -> set[str]:
    """Top-level names of the modules a fresh ``python -X importtime ARGS`` imports."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=CHECKOUT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    return set(rows[1:])  # the first row is the header


def test_help_imports_no_dev_tool() -> None:
    names = imported("-m", "pipeline", "--help")
    assert "pipeline.cli" in names
    assert not {n for n in names if n.startswith("pipeline.devtools")}
    assert "pipeline.ops.units" not in names  # imported by its subcommand only


@pytest.mark.parametrize("args", [["-c", "import pipeline.ops.housekeeping"],
                                  ["-m", "pipeline", "--help"]])  # fmt: skip
def test_housekeeping_and_help_load_neither_pandas_nor_pyarrow(args: list[str]) -> None:
    assert {"pandas", "pyarrow"}.isdisjoint(imported(*args))


def test_the_docs_show_the_help_as_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ran: Recorder
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what argparse wraps to when not on a terminal
    page = (CHECKOUT / "docs" / "operating.md").read_text()
    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        shown = capsys.readouterr().out
        assert shown.split("\nenvironment:")[0] in page, argv


def test_the_last_line_says_how_the_run_ended(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.log"
    (tmp_path / "latest").symlink_to("2026-11-25T17")
    hour = "2026-11-25T17"
    assert runner.outcome(0, hour, tmp_path, False, log) == (
        "done (exit 0): 2026-11-25T17 is complete; latest -> 2026-11-25T17"
    )
    assert runner.outcome(0, hour, tmp_path, True, log) == (
        "nothing to do (exit 0): 2026-11-25T17 was already complete; latest -> 2026-11-25T17"
    )
    assert runner.outcome(30, hour, tmp_path, False, log) == (
        f"failed (exit 30): the cause and what to do are above. Details and tracebacks: {log}"
    )
    assert runner.outcome(10, hour, tmp_path, False, log) == (
        f"not run (exit 10): another run holds this hour or this command line. Run log: {log}"
    )
    assert runner.outcome(25, hour, tmp_path, False, log) == (
        "not run (exit 25): the scheduler did not let this run work (a luigid holds a task it saw "
        "done for [scheduler] stable_done_cooldown_secs, 10 s: run it again after that). Run "
        f"log: {log}"
    )
    assert runner.outcome(40, hour, tmp_path, False, log).startswith(
        "failed (exit 40): an unexpected"
    )


def test_an_hour_finished_by_workers_of_one_scheduler_together_is_a_success(
    tmp_path: Path,
) -> None:
    """luigi ends a worker that left tasks to other workers of its luigid with 10 or 25; for
    the hour it was asked for, complete and published, python -m pipeline says done, exit 0."""
    hour, args = datetime(2026, 11, 25, 17), ["Insights", "--date-hour", "2026-11-25T17"]
    central, local = "central (from the command line)", "local (--local-scheduler given)"
    assert not runner.done_with_others(25, central, tmp_path, hour, args)  # not complete
    (tmp_path / "2026-11-25T17").mkdir()
    (tmp_path / "2026-11-25T17" / "manifest.json").write_text("{}")
    assert not runner.done_with_others(25, central, tmp_path, hour, args)  # not published
    (tmp_path / "latest").symlink_to("2026-11-25T17")
    assert [runner.done_with_others(rc, central, tmp_path, hour, args) for rc in (10, 25, 30)] == [
        True, True, False,  # a failure stays one
    ]  # fmt: skip
    assert not runner.done_with_others(10, local, tmp_path, hour, args)  # another run's claim
    assert runner.outcome(0, "2026-11-25T17", tmp_path, False, tmp_path, shared=True) == (
        "done (exit 0): 2026-11-25T17 is complete, with other workers of the scheduler; "
        "latest -> 2026-11-25T17"
    )


@pytest.mark.slow  # two processes: the fast suite stays under 30 s
@pytest.mark.parametrize("entry", [[LUIGI, "--module", "pipeline", "Insights"],
                                   [sys.executable, "-m", "pipeline", "run"]])  # fmt: skip
def test_the_list_of_every_option_that_messages_point_to_is_printed(
    entry: list[str], tmp_path: Path
) -> None:
    """argparse formats each option's help with ``%``: a description must not hold one."""
    result = subprocess.run([*entry, "--help-all"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    text = " ".join(result.stdout.split())
    assert "--quality-anomaly-k QUALITY_ANOMALY_K Width of the band in scaled MADs" in text
    assert "narrower than 5 percent of the median" in text


def test_a_run_log_that_cannot_be_written_refuses_the_run_as_an_unusable_data_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data root is checked before the run by looking only; a folder that refuses only
    when written (``/proc``, a full disk; here ``logs`` is a file) is refused as unusable too."""
    (tmp_path / "logs").write_text("not a folder")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setattr(runner, "run_luigi", lambda args: pytest.fail("luigi must not run"))
    assert cli.main(["--date-hour", "2026-11-25T17"]) == 78
    assert capsys.readouterr().err == (
        f"pipeline: error: cannot write run logs in {tmp_path}/logs: File exists; nothing was "
        "written. Fix the data root (PIPELINE_DATA_DIR / [paths] data_dir) or its permissions\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


@pytest.mark.parametrize("command", ["prune", "units", "status", "report", "backfill", "demo"])
def test_a_commands_help_is_written_for_its_user(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a module's docstring: no reStructuredText markup, no internal names."""
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    out, err = capsys.readouterr()
    assert (done.value.code, err) == (0, "")
    assert out.startswith(f"usage: python -m pipeline {command} ")
    assert "``" not in out
    assert not re.search(r"\bpipeline\.\w+\.", out), out


def test_an_option_luigi_does_not_know_is_one_line_not_its_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: pytest.fail("luigi must not run"))
    assert cli.main(["--api-page-sizee", "5"]) == 2
    assert capsys.readouterr().err == (
        "pipeline: error: unrecognized arguments: --api-page-sizee 5 (`luigi --module pipeline "
        "Insights --help-all` lists every option)\n"
    )
