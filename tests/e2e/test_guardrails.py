"""Guardrails for operators (issue 10), through the command line a user types: what the console
says when the API cannot be reached, when a setting, the hour or the data root is unusable, and
that a refused run writes nothing."""

from __future__ import annotations

import email
import email.message
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import LUIGI, PARTITION, REPO, fingerprint

pytestmark = pytest.mark.slow

SCRIPT = REPO / "run_pipeline.sh"
TIME = re.compile(r"^\d\d:\d\d:\d\d ")
DEMO = "`./run_pipeline.sh demo` (the whole pipeline offline, against a local demo API)"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    return {**base, **extra}


def run(cmd: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env(**extra), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def console(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The console's lines without their HH:MM:SS."""
    return [TIME.sub("", line) for line in result.stderr.splitlines()]


@pytest.fixture
def caller(tmp_path: Path) -> Path:
    """A working directory outside the checkout, without any luigi configuration."""
    path = tmp_path / "caller"
    path.mkdir()
    return path


def test_a_first_run_whose_api_name_does_not_resolve_is_a_few_lines(caller: Path) -> None:
    """The offline first run, with a name that never resolves (RFC 6761) instead of dummyjson.com:
    two attempts (one retry), the cause, what to do and the exit code; at most 15 lines."""
    data = caller / "data"
    result = run([str(SCRIPT), "--lock-pid-dir", str(caller / "pids")], caller,
                 PIPELINE_API_URL="https://shop.invalid", PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 30, result.stderr
    (log,) = (data / "logs").glob("run-*")
    lines = console(result)
    assert len(lines) <= 15
    url = "https://shop.invalid/products?limit=1000&skip=0"
    assert lines == [
        "pipeline: scheduler: local (no central scheduler configured)",
        f"pipeline: log file: {log}",
        "ExtractProducts started",
        f"WARNING attempt 1 failed, retrying in 0.5s: GET {url}: connection failed: the name "
        "shop.invalid does not resolve",
        f"ERROR ExtractProducts failed: products: GET {url}: connection failed: the name "
        "shop.invalid does not resolve (gave up after 2 attempts)",
        "         what to do: check the network and DNS (can this machine resolve "
        f"shop.invalid?); or try {DEMO}",
        "ExtractUsers started",
        "ERROR ExtractUsers failed: users: not attempted, circuit open: the API stopped "
        "answering earlier in this run",
        "ExtractCarts started",
        "ERROR ExtractCarts failed: carts: not attempted, circuit open: the API stopped "
        "answering earlier in this run",
        f"pipeline: failed (exit 30): the cause and what to do are above. Details and "
        f"tracebacks: {log}",
    ]
    assert log.read_text().count("Traceback (most recent call last):") == 3


def test_bad_options_in_luigi_cfg_and_on_the_command_line_are_one_message(caller: Path) -> None:
    cfg = caller / "luigi.cfg"  # luigi reads luigi.cfg from the working directory
    cfg.write_text((REPO / "luigi.cfg").read_text() + "\n[api]\npage_size = abc\nconcurrency = 0\n")
    data = caller / "data"
    result = run([str(SCRIPT), "--api-retries=-3", "--date-hour", PARTITION], caller,
                 PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 78
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "pipeline: error: 3 setting(s) unusable; nothing was scheduled or written:",
        f"  [api] page_size = 'abc' (from {cfg}): is not a whole number",
        f"  [api] concurrency = '0' (from {cfg}): must be 1 to 64",
        "  [api] retries = '-3' (from command line --api-retries): must be 0 to 20",
        f"  (luigi configuration read: {cfg})",
        "pipeline: refused (exit 78): fix the settings above (docs/settings.md)",
    ]
    assert not data.exists()  # not even the run log


def test_a_future_hour_is_refused(caller: Path) -> None:
    data = caller / "data"
    result = run([str(SCRIPT), "--date-hour", "2999-01-01T00"], caller,
                 PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert lines[0] == "pipeline: error: 1 setting(s) unusable; nothing was scheduled or written:"
    assert re.fullmatch(
        r"  --date-hour = 2999-01-01T00 \(from the command line\): is in the future: this "
        r"machine's UTC clock says \d{4}-\d\d-\d\dT\d\d:\d\d \(\[run\] clock_skew_minutes = 5 "
        r"allows hours up to \d{4}-\d\d-\d\dT\d\d\); `latest` would stay on it until then, "
        r"hiding every run before it",
        lines[1],
    )
    assert lines[-1] == "pipeline: refused (exit 78): fix the settings above (docs/settings.md)"
    assert not data.exists()


def read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        path = tmp_path / "read-only"
        path.mkdir(mode=0o555)
        return path
    if not os.access("/proc/sys", os.W_OK):  # root may write anywhere but a read-only mount
        return Path("/proc/sys")
    pytest.skip("running as root without a read-only directory to try")


def test_a_data_root_that_is_a_file_or_read_only_is_refused(caller: Path, tmp_path: Path) -> None:
    a_file = caller / "data"
    a_file.write_text("not a directory")
    result = run([str(SCRIPT), "--date-hour", PARTITION], caller, PIPELINE_DATA_DIR="data")
    assert result.returncode == 78
    assert result.stderr.splitlines()[1] == (
        f"  data root {a_file} is not a directory (from environment PIPELINE_DATA_DIR)"
    )
    assert a_file.read_text() == "not a directory"
    below = read_only_dir(tmp_path) / "data"
    result = run([str(SCRIPT), "--date-hour", PARTITION], caller, PIPELINE_DATA_DIR=str(below))
    assert result.returncode == 78
    assert result.stderr.splitlines()[1] == (
        f"  data root {below} cannot be created: {below.parent} is not writable "
        "(from environment PIPELINE_DATA_DIR)"
    )


def test_plain_luigi_refuses_bad_settings_before_scheduling_anything(caller: Path) -> None:
    data = caller / "data"
    cmd = [LUIGI, "--module", "pipeline", "Insights", "--local-scheduler", "--lock-pid-dir",
           str(caller / "pids"), "--api-page-size", "-5", "--date-hour", PARTITION]  # fmt: skip
    result = run(cmd, caller, PIPELINE_DATA_DIR=str(data))
    assert result.returncode == 78, result.stderr
    assert "[api] page_size = '-5' (from command line --api-page-size): must be >= 1" in (
        result.stderr
    )
    assert "Informed scheduler" not in result.stderr  # nothing was scheduled
    assert not data.exists()


def test_a_data_root_that_refuses_only_when_written_is_refused_by_plain_luigi_too(
    caller: Path,
) -> None:
    """The check before a run only looks; a root that refuses when written (``/proc``, a full
    disk; here the hour's folder is a file) is refused as unusable too, with 78 and one line:
    by plain luigi as the hour is claimed (it said "unexpected ... please report it", exit 35);
    by ``python -m pipeline`` as its run log is made (tests/unit/test_cli.py)."""
    data = caller / "data"
    (data / "logs").mkdir(parents=True)
    (data / PARTITION).write_text("not a folder")
    cmd = [LUIGI, "--module", "pipeline", "Insights", "--local-scheduler", "--lock-pid-dir",
           str(caller / "pids"), "--date-hour", PARTITION]  # fmt: skip
    result = run(cmd, caller, PIPELINE_DATA_DIR=str(data))
    assert result.returncode == 78, result.stderr
    assert console(result)[0] == f"ERROR data root {data} cannot be written: File exists"
    assert (data / PARTITION).read_text() == "not a folder"


def test_a_run_moves_a_future_latest_back_to_the_hour_it_publishes(
    api: DummyJSONServer, caller: Path
) -> None:
    data = caller / "data"
    data.mkdir()
    (data / "latest").symlink_to("2999-01-01T00")  # left by a run before hours were checked
    result = run([str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p")],
                 caller, PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert os.readlink(data / "latest") == PARTITION
    assert "WARNING latest pointed at 2999-01-01T00, later than the current hour; moving it" in (
        console(result)
    )


def test_a_long_extract_says_how_far_it_is_at_every_interval(
    fixture_dataset: Dataset, caller: Path
) -> None:
    """8 products a page at a time, 0.3 s a request: progress lines every 0.5 s."""
    args = ["--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p"), "--api-page-size", "1",
            "--api-concurrency", "1", "--run-progress-seconds", "0.5"]  # fmt: skip
    with DummyJSONServer(fixture_dataset, latency=0.3) as slow:
        result = run([str(SCRIPT), *args], caller, PIPELINE_API_URL=slow.url,
                     PIPELINE_DATA_DIR=str(caller / "data"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = console(result)
    ticks = [
        re.fullmatch(r"ExtractProducts: (\d)/8 records, page \1/8, [\d.]+ records/s, about \d+ s "
                     r"left \((\d+) s\)", line)
        for line in lines
        if line.startswith("ExtractProducts: ")
    ]  # fmt: skip
    assert len(ticks) >= 2 and all(ticks), lines
    done = [int(m[1]) for m in ticks if m]
    assert done == sorted(done)  # the latest status each time
    start, end = (
        lines.index("ExtractProducts started"),
        lines.index(next(line for line in lines if line.startswith("ExtractProducts done in"))),
    )
    assert all(start < lines.index(m[0]) < end for m in ticks if m)
    assert lines[end].endswith(": 8 records, 8 pages")


# -- rebuilding an hour on purpose ---------------------------------------------------------------


def manifest(data: Path) -> dict:
    return orjson.loads((data / PARTITION / "manifest.json").read_bytes())


@pytest.fixture
def built(api: DummyJSONServer, caller: Path) -> Path:
    """A data root whose hour PARTITION is complete, with the default minimum price (50)."""
    data = caller / "data"
    result = run([str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p")],
                 caller, PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert manifest(data)["min_product_price"] == 50
    return data


def test_a_complete_hour_asked_for_with_other_options_says_nothing_ran_and_how_to_rerun(
    api: DummyJSONServer, built: Path, caller: Path
) -> None:
    before = fingerprint(built / PARTITION)
    api.reset_log()
    args = ["--date-hour", PARTITION, "--clean-min-product-price", "25"]
    result = run([str(SCRIPT), *args, "--lock-pid-dir", str(caller / "p")], caller,
                 PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(built))  # fmt: skip
    assert result.returncode == 0
    assert console(result)[2:] == [
        f"WARNING {PARTITION} is already complete, built with [clean] min_product_price = 50 "
        "(this run: 25): nothing ran.",
        "         To rebuild it with this run's options: ./run_pipeline.sh rerun --date-hour "
        f"{PARTITION} --clean-min-product-price 25",
        f"pipeline: nothing to do (exit 0): {PARTITION} was already complete; latest -> "
        f"{PARTITION}",
    ]
    assert fingerprint(built / PARTITION) == before and api.request_count == 0


def test_rerun_rebuilds_beside_the_old_hour_and_swaps_it_in_when_complete(
    fixture_dataset: Dataset, built: Path, caller: Path
) -> None:
    old = fingerprint(built / PARTITION)
    earlier = "2026-11-25T16"  # a complete earlier hour (a copy), which the rebuild compares with
    shutil.copytree(built / PARTITION, built / earlier)
    cmd = [str(SCRIPT), "rerun", "--date-hour", PARTITION, "--clean-min-product-price", "25",
           "--lock-pid-dir", str(caller / "p"), "--api-page-size", "1"]  # fmt: skip
    with DummyJSONServer(fixture_dataset, latency=0.2) as slow:  # 20 requests: a few seconds
        proc = subprocess.Popen(cmd, cwd=caller, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env(PIPELINE_API_URL=slow.url,
                                                   PIPELINE_DATA_DIR=str(built)))  # fmt: skip
        staging = built / f".{PARTITION}.rerun-{proc.pid}"
        while not (staging / PARTITION / "jsons").exists() and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        # While the rebuild runs, readers see the old hour, whole, and `latest` on it:
        assert fingerprint(built / PARTITION) == old
        assert os.readlink(built / "latest") == PARTITION
        # and a run of that hour meanwhile finds the old one complete and touches nothing:
        busy = run([str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(caller / "q"),
                    "--clean-min-product-price", "10"], caller, PIPELINE_API_URL=slow.url,
                   PIPELINE_DATA_DIR=str(built))  # fmt: skip
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert busy.returncode == 0 and "nothing ran" in busy.stderr  # still complete: untouched
    # The summary of the hour as swapped in, and the rebuilt report: both against the earlier
    # hour of the data root (the staging root has none).
    assert out.splitlines()[3:] == [
        f"Change since {earlier}: carts +0, revenue +$0.00 (+0.0%)",
        f"Report: {built / PARTITION / 'report' / 'index.html'}",
        f"Latest: {built / 'latest'} -> {PARTITION}",
    ]
    findings = (built / PARTITION / "report" / "findings.md").read_text()
    assert f"Against {earlier} (1 hour earlier): carts 6 (no change)" in findings
    assert err.splitlines()[0] == (
        f"pipeline: rebuilding {PARTITION} in {staging}; {built / PARTITION} stays as it is "
        "until then"
    )
    assert err.splitlines()[-1] == (
        f"pipeline: done (exit 0): {PARTITION} rebuilt and swapped in; latest -> {PARTITION}"
    )
    assert manifest(built)["min_product_price"] == 25
    assert sorted(p.name for p in built.iterdir()) == [
        ".latest.lock", earlier, PARTITION, "history", "latest", "logs",
    ]  # fmt: skip
    assert os.readlink(built / "latest") == PARTITION


def test_a_failed_rerun_leaves_the_old_hour_untouched(
    api: DummyJSONServer, built: Path, caller: Path
) -> None:
    old = fingerprint(built / PARTITION)
    api.add_fault("status", endpoint="carts", times=None, status=503)
    cmd = [str(SCRIPT), "rerun", "--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p"),
           "--api-retries", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=caller, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(PIPELINE_API_URL=api.url,
                                               PIPELINE_DATA_DIR=str(built)))  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 30, err
    staging = built / f".{PARTITION}.rerun-{proc.pid}"
    assert err.splitlines()[-1] == (
        f"pipeline: {PARTITION} is unchanged; the failed rebuild stays in {staging} for a look"
    )
    assert fingerprint(built / PARTITION) == old
    assert os.readlink(built / "latest") == PARTITION
    assert (staging / PARTITION / "jsons" / "users.jsonl").exists()
    api.clear_faults()
    again = run(cmd, caller, PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(built))
    assert again.returncode == 0, again.stderr
    assert f"pipeline: removed {staging}, left by an earlier rerun" in again.stderr
    assert not staging.exists()


def test_rerun_of_an_hour_never_run_says_how_to_run_it(caller: Path) -> None:
    data = caller / "data"
    result = run([str(SCRIPT), "rerun", "--date-hour", PARTITION], caller,
                 PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"pipeline: error: {PARTITION} has never been run under {data}: nothing to rebuild; run "
        f"it with ./run_pipeline.sh --date-hour {PARTITION}\n"
    )


# -- someone hears about a failure ---------------------------------------------------------------


class Mailbox:
    """aiosmtpd's handler: keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_luigis_failure_mail_carries_the_cause_what_to_do_and_the_run_log(caller: Path) -> None:
    from aiosmtpd.controller import Controller

    mailbox, port, api_port = Mailbox(), free_port(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = [
            "--email-receiver",
            "ops@example.com",
            "--email-sender",
            "etl@example.com",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(port),
            "--smtp-no-tls",
        ]
        result = run([str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p"),
                      "--api-retries", "0", *mail], caller,
                     PIPELINE_API_URL=f"http://127.0.0.1:{api_port}",
                     PIPELINE_DATA_DIR=str(caller / "data"))  # fmt: skip
    finally:
        controller.stop()
    assert result.returncode == 30, result.stderr
    (log,) = (caller / "data" / "logs").glob("run-*.log")
    subjects = sorted(str(m["Subject"]) for m in mailbox.messages)
    assert subjects == sorted(
        f"Luigi: {task}(date_hour={PARTITION}) FAILED. Host: {socket.gethostname()}"
        for task in ("ExtractProducts", "ExtractUsers", "ExtractCarts")
    )
    first = next(m for m in mailbox.messages if "ExtractProducts" in str(m["Subject"]))
    body = "".join(part.get_payload(decode=True).decode() for part in first.walk()
                   if part.get_content_type() == "text/plain")  # fmt: skip
    host = f"127.0.0.1:{api_port}"
    assert (
        f"ExtractProducts failed for {PARTITION}: products: GET http://{host}/products?limit=1000"
        f"&skip=0: connection failed: {host} refused the connection (gave up after 1 attempt)\n"
        f"What to do: is the API running and listening at {host}? Check PIPELINE_API_URL / "
        f"[api] base_url; or try {DEMO}\n"
        f"Run log: {log}\n"
    ) in body
    assert "Traceback (most recent call last):" in body  # after them


def test_the_failure_unit_gets_the_hour_of_the_failed_run(
    api: DummyJSONServer, caller: Path, tmp_path: Path
) -> None:
    """What systemd does on failure, step by step: the rendered template's EnvironmentFile= read,
    ${PIPELINE_HOUR} put into its ExecStart=, the command run."""
    data = caller / "data"
    args = ["--date-hour", PARTITION, "--lock-pid-dir", str(caller / "p"), "--api-retries", "0"]
    failed = run([str(SCRIPT), *args], caller, PIPELINE_API_URL=f"http://127.0.0.1:{free_port()}",
                 PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert failed.returncode == 30
    (log,) = (data / "logs").glob("run-*.log")
    env_file = data / "logs" / "failed-run.env"
    assert env_file.read_text() == (
        f"PIPELINE_HOUR={PARTITION}\nPIPELINE_EXIT_CODE=30\nPIPELINE_RUN_LOG={log}\n"
    )
    # no folder left for the hour (nothing was written), yet `status` calls it failed, not missing
    said = run([str(SCRIPT), "status", "--data-dir", str(data), "--days", "1"], caller,
               PIPELINE_NOW=os.environ["PIPELINE_NOW"])  # fmt: skip
    assert not (data / PARTITION).exists()
    assert (said.returncode, said.stdout.splitlines()[0]) == (2, (
        "CRITICAL: no complete hour; 1 hour(s) missing and 1 failed since 2026-11-25T17, the first "
        "hour on record"
    ))  # fmt: skip
    assert said.stdout.splitlines()[3:6] == [
        "  missing: 2026-11-25T18",  # none before the failed run's hour, the first on record
        f"  failed: {PARTITION}",
        f"  failed run: {PARTITION} exited 30; run log: {log}",
    ]

    record = tmp_path / "told"
    script = tmp_path / "tell-ops"
    script.write_text(f'#!/bin/sh\necho "$*" "$PIPELINE_EXIT_CODE" > {record}\n')
    script.chmod(0o755)
    units = run([str(SCRIPT), "units", str(tmp_path / "units"), "--data-dir", str(data),
                 "--on-failure", f"{script} etl"], caller)  # fmt: skip
    assert units.returncode == 0, units.stderr
    unit = (tmp_path / "units" / "etl-pipeline-failure@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)[1]  # type: ignore[index]
    env_path = re.search(r"^EnvironmentFile=-(.*)$", unit, re.M)[1]  # type: ignore[index]
    assert env_path == str(env_file)
    values = dict(line.split("=", 1) for line in Path(env_path).read_text().splitlines())
    command = exec_start.replace("${PIPELINE_HOUR}", values["PIPELINE_HOUR"]).split()
    subprocess.run(command, env={**os.environ, **values}, check=True, timeout=60)
    assert record.read_text() == f"etl {PARTITION} 30\n"

    fixed = run([str(SCRIPT), *args[:4]], caller, PIPELINE_API_URL=api.url,
                PIPELINE_DATA_DIR=str(data))  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert not env_file.exists()  # a success: no failed run to tell about
