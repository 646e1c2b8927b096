"""The rendered units say what operations needs and pass `systemd-analyze verify`."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ops import units
from pipeline.ops.units import (
    CHECKOUT,
    UNITS,
    UnitSettings,
    access_problems,
    main,
    protect_home,
    reach_problem,
    render,
    write_units,
)

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (.ci/run installs it when root)"
)
ME = pwd.getpwuid(os.geteuid()).pw_name


def parse(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) pairs in order; systemd allows repeated keys, configparser not."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key, value))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    (value,) = values(unit, section, key)
    return value


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"},
    )  # fmt: skip


def test_pipeline_service(data_root: Path) -> None:
    unit = parse(render(UnitSettings(user="etl", data_dir=data_root))["etl-pipeline.service"])
    service = dict(unit["Service"])
    assert service["Type"] == "oneshot"
    assert service["TimeoutStartSec"] == "45min"
    assert service["SuccessExitStatus"] == "143"  # systemctl stop: exit 143, not a failure
    assert service["User"] == "etl"
    assert service["WorkingDirectory"] == str(CHECKOUT)
    assert service["ExecStart"] == f"{CHECKOUT}/run_pipeline.sh"
    env = values(unit, "Service", "Environment")
    assert f"PIPELINE_DATA_DIR={data_root}" in env
    assert "PIPELINE_NO_BOOTSTRAP=1" in env
    assert not [e for e in env if e.startswith("LUIGI_SCHEDULER_URL")]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == str(data_root)
    assert service["PrivateTmp"] == "yes"
    assert service["ProtectHome"] in ("yes", "read-only")
    assert "luigid.service" not in " ".join(values(unit, "Unit", "Wants"))
    assert "Install" not in unit  # started by the timer only


def test_pipeline_service_with_luigid(data_root: Path) -> None:
    settings = UnitSettings(user="etl", data_dir=data_root, with_luigid=True, port=8099)
    unit = parse(render(settings)["etl-pipeline.service"])
    assert one(unit, "Unit", "Wants").split() == ["network-online.target", "luigid.service"]
    assert one(unit, "Unit", "After").split() == ["network-online.target", "luigid.service"]
    assert "LUIGI_SCHEDULER_URL=http://127.0.0.1:8099" in values(unit, "Service", "Environment")


def test_failure_hook_is_documented(data_root: Path) -> None:
    text = render(UnitSettings(user="etl", data_dir=data_root))["etl-pipeline.service"]
    assert "#OnFailure=etl-pipeline-failure@%n.service" in text


def test_timer(data_root: Path) -> None:
    unit = parse(render(UnitSettings(user="etl", data_dir=data_root))["etl-pipeline.timer"])
    assert dict(unit["Timer"]) == {
        "OnCalendar": "hourly",
        "Persistent": "true",
        "RandomizedDelaySec": "300",
        "Unit": "etl-pipeline.service",
    }
    assert dict(unit["Install"]) == {"WantedBy": "timers.target"}


def test_luigid_service_is_local_only_with_persistent_state(data_root: Path) -> None:
    unit = parse(render(UnitSettings(user="etl", port=8123))["luigid.service"])
    service = dict(unit["Service"])
    assert service["ExecStart"].split() == [
        f"{CHECKOUT}/.venv/bin/luigid", "--address", "127.0.0.1", "--port", "8123",
        "--logdir", "%L/etl-pipeline", "--state-path", "%S/etl-pipeline/luigi-state.pickle",
    ]  # fmt: skip
    assert service["StateDirectory"] == service["LogsDirectory"] == "etl-pipeline"
    assert service["User"] == "etl"
    assert f"LUIGI_CONFIG_PATH={CHECKOUT}/config/luigid.cfg" in values(
        unit, "Service", "Environment"
    )
    assert dict(unit["Install"]) == {"WantedBy": "multi-user.target"}


def test_protect_home_follows_where_things_live() -> None:
    outside = UnitSettings(checkout=Path("/srv/etl"), user="etl", data_dir=Path("/srv/data"))
    assert protect_home(outside)[0] == "yes"
    for data in ("/home/etl/data", "/root/data", "/run/user/1000/data"):
        settings = UnitSettings(checkout=Path("/srv/etl"), user="etl", data_dir=Path(data))
        home, why = protect_home(settings)
        assert home == "read-only" and data in why
    in_home = UnitSettings(checkout=Path("/home/etl/src"), user="etl")
    assert protect_home(in_home)[0] == "read-only"
    assert protect_home(UnitSettings(checkout=Path("/homestead"), user="etl"))[0] == "yes"


@pytest.mark.parametrize("data_dir", ["relative/data", "/srv/my data", "/srv/100%", "/srv/$X"])
def test_rejects_paths_systemd_would_mangle(data_dir: str) -> None:
    with pytest.raises(ValueError):
        render(UnitSettings(user="etl", data_dir=Path(data_dir)))


def test_cli_writes_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "units"
    assert main([str(dest), "--user", "nosuchuser-xyz", "--data-dir", str(tmp_path / "nope")]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(UNITS)
    assert all((dest / u).stat().st_mode & 0o777 == 0o644 for u in UNITS)
    out, err = capsys.readouterr()
    assert "systemctl daemon-reload" in out
    assert "nosuchuser-xyz" in err and f"{tmp_path / 'nope'} does not exist" in err
    assert "User=nosuchuser-xyz" in (dest / "etl-pipeline.service").read_text()


@needs_analyze
@pytest.mark.parametrize("with_luigid", [False, True])
def test_systemd_analyze_verify_is_silent(
    tmp_path: Path, data_root: Path, with_luigid: bool
) -> None:
    # verify checks ExecStart= binaries exist: this checkout's script and venv's luigid.
    assert (CHECKOUT / "run_pipeline.sh").exists() and (CHECKOUT / ".venv/bin/luigid").exists()
    settings = UnitSettings(user=ME, data_dir=data_root, with_luigid=with_luigid)
    paths = write_units(tmp_path / "units", settings)
    result = analyze("verify", "--man=no", *map(str, paths))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_analyze
def test_systemd_analyze_verify_really_checks_here(tmp_path: Path, data_root: Path) -> None:
    """Control: without PID 1 systemd, verify must still catch broken units, or the above lies."""
    text = render(UnitSettings(user=ME, data_dir=data_root))["etl-pipeline.service"]
    broken = tmp_path / "etl-pipeline.service"
    broken.write_text(
        text.replace("ExecStart=", "ExecStart=/nonexistent")
        .replace("ProtectHome=", "ProtectHomme=")
    )  # fmt: skip
    result = analyze("verify", "--man=no", str(broken))
    assert result.returncode != 0
    assert "Unknown key 'ProtectHomme'" in result.stderr
    assert "is not executable" in result.stderr


@needs_analyze
def test_timer_calendar_expression(data_root: Path) -> None:
    unit = parse(render(UnitSettings(user=ME, data_dir=data_root))["etl-pipeline.timer"])
    result = analyze("calendar", one(unit, "Timer", "OnCalendar"))
    assert result.returncode == 0, result.stderr
    assert "Normalized form: *-*-* *:00:00" in result.stdout


# -- can the service user run this checkout? ----------------------------------------------------

OTHER = 54321  # a uid and gid no file here belongs to


@pytest.fixture
def tree() -> Iterator[Path]:
    """A directory anyone may search (pytest's own tmp_path is private to its user), in which
    new folders are too: run_pipeline.sh runs the tests under umask 027."""
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    umask = os.umask(0o022)
    try:
        yield base
    finally:
        os.umask(umask)
        shutil.rmtree(base)


def test_a_private_directory_on_the_way_is_named_with_its_mode(tree: Path) -> None:
    private = tree / "private"
    (private / "bin").mkdir(parents=True)
    (private / "bin" / "python").write_text("")
    private.chmod(0o700)
    problem = reach_problem(private / "bin" / "python", OTHER, {OTHER}, 1, "etl")
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert problem == f"{private} (drwx------ {me}:{group}) is not searchable by etl"
    assert reach_problem(private / "bin" / "python", os.getuid(), set(), 0, "me") is None


def test_symbolic_links_are_followed_as_the_kernel_does(tree: Path) -> None:
    (tree / "venv" / "bin").mkdir(parents=True)
    (tree / "home").mkdir(mode=0o700)
    (tree / "home" / "python3.11").write_text("")
    (tree / "home" / "python3.11").chmod(0o755)
    (tree / "home").chmod(0o700)
    (tree / "venv" / "bin" / "python").symlink_to(tree / "home" / "python3.11")
    problem = reach_problem(tree / "venv" / "bin" / "python", OTHER, {OTHER}, 1, "etl")
    assert problem is not None and problem.startswith(f"{tree / 'home'} (drwx------ ")
    (tree / "home").chmod(0o711)  # searchable, not listable: enough
    assert reach_problem(tree / "venv" / "bin" / "python", OTHER, {OTHER}, 1, "etl") is None


def test_group_bits_count_for_members_and_the_file_itself_is_checked(tree: Path) -> None:
    shared = tree / "shared"
    shared.mkdir()
    (shared / "luigi.cfg").write_text("")
    if os.geteuid() == 0:
        os.chown(shared, -1, OTHER)
    shared.chmod(0o750)
    (shared / "luigi.cfg").chmod(0o600)
    member = {OTHER} if os.geteuid() == 0 else {os.getgid()}
    problem = reach_problem(shared / "luigi.cfg", OTHER, member, 4, "etl")
    assert problem is not None and problem.endswith("is not readable by etl")
    (shared / "luigi.cfg").chmod(0o644)
    assert reach_problem(shared / "luigi.cfg", OTHER, member, 4, "etl") is None
    assert reach_problem(shared / "luigi.cfg", OTHER, {OTHER + 1}, 4, "etl") is not None


def test_the_user_running_the_checkout_has_nothing_in_the_way() -> None:
    assert access_problems(UnitSettings(user=ME)) == []
    assert access_problems(UnitSettings(user="nosuchuser-xyz")) == []  # a warning says so


def test_units_refuses_to_write_for_a_user_who_cannot_run_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = ["/root (drwx------ root:root) is not searchable by etl (the venv's Python: x)"]
    monkeypatch.setattr(units, "access_problems", lambda settings: found)
    assert main([str(tmp_path / "units"), "--user", "etl"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: etl cannot run this checkout; no unit written:",
        f"  {found[0]}",
        "what to do: give etl access to these paths, or clone and bootstrap the checkout as etl "
        "(its own .venv) and run units from there",
    ]
    assert not (tmp_path / "units").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a process as another user")
def test_as_root_the_venvs_python_is_really_started_as_the_user(tree: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    python = tree / "python"
    python.write_text('#!/bin/sh\necho "PermissionError: [Errno 13] uid $(id -u)" >&2\nexit 1\n')
    python.chmod(0o755)
    assert units._try_as(nobody, [nobody.pw_gid], python, tree) == [
        f"as nobody, `{python} -c 'import pipeline'` failed: PermissionError: [Errno 13] uid "
        f"{nobody.pw_uid}"
    ]


def test_on_failure_renders_a_template_unit_that_runs_the_command_with_the_hour(
    data_root: Path,
) -> None:
    settings = UnitSettings(user="etl", data_dir=data_root, on_failure=("/usr/bin/page", "etl"))
    rendered = render(settings)
    assert set(rendered) == {*UNITS, "etl-pipeline-failure@.service"}
    service = parse(rendered["etl-pipeline.service"])
    assert one(service, "Unit", "OnFailure") == "etl-pipeline-failure@%n.service"
    failure = parse(rendered["etl-pipeline-failure@.service"])
    assert dict(failure["Service"]) == {
        "Type": "oneshot",
        "User": "etl",
        "EnvironmentFile": f"-{data_root}/logs/failed-run.env",
        "Environment": "PIPELINE_FAILED_UNIT=%i",
        "ExecStart": "/usr/bin/page etl ${PIPELINE_HOUR}",
    }
    plain = render(UnitSettings(user="etl", data_dir=data_root))
    assert set(plain) == set(UNITS)
    assert "OnFailure" not in parse(plain["etl-pipeline.service"])["Unit"]


@pytest.mark.parametrize("command", [("page",), ("/usr/bin/page", "100%"), ("/bin/x", "$HOME")])
def test_on_failure_refuses_what_systemd_would_read_otherwise(command: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="--on-failure needs an absolute program path"):
        render(UnitSettings(user="etl", on_failure=command))


@needs_analyze
def test_the_failure_unit_passes_systemd_analyze_verify(tmp_path: Path, data_root: Path) -> None:
    settings = UnitSettings(user=ME, data_dir=data_root, on_failure=("/bin/echo", "failed:"))
    paths = write_units(tmp_path / "units", settings)
    result = analyze("verify", "--man=no", *map(str, paths))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
