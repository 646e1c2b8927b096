"""Every default is declared once, in pipeline/config.py; luigi.cfg and docs/settings.md agree."""

from __future__ import annotations

import configparser
import dataclasses
import os
import pwd
import re
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline import config, config_check
from pipeline.api.client import ClientSettings
from tests.support import REPO, documented_settings

CLASSES: dict[str, type[luigi.Config]] = {
    name: cls
    for name, cls in vars(config).items()
    if isinstance(cls, type) and issubclass(cls, luigi.Config) and cls.__module__ == config.__name__
}
#: luigi's own sections, which may only be set in luigi.cfg.
LUIGI_SECTIONS = {"core", "retcode"}
#: Options luigi.cfg sets to their class default on purpose: (section, option) -> why.
DELIBERATE: dict[tuple[str, str], str] = {}


def params(cls: type[luigi.Config]) -> dict[str, luigi.Parameter]:
    return dict(cls.get_params())


def same(param: luigi.Parameter, text: str, value: Any) -> bool:
    return param.normalize(param.parse(text)) == param.normalize(value)


def test_the_sections_are_the_ones_luigi_cfg_and_the_docs_use() -> None:
    assert set(CLASSES) == {
        "api",
        "extract",
        "clean",
        "paths",
        "quality",
        "housekeeping",
        "storage",
        "report",
        "history",
        "run",
        "monitoring",
        "metrics",
    }
    assert all(cls.get_task_family() == name for name, cls in CLASSES.items())
    assert set(config.SECTIONS) == set(CLASSES.values())  # what check_settings() goes through


@pytest.mark.parametrize("section", sorted(CLASSES))
def test_every_option_has_a_default_a_description_and_what_it_allows(section: str) -> None:
    for name, param in params(CLASSES[section]).items():
        assert param._default is not luigi.parameter._no_value, f"[{section}] {name}"
        assert param.description and len(param.description) > 15, f"[{section}] {name}"
        assert isinstance(param.allowed, config.Allowed), f"[{section}] {name}"
        assert param.allowed.problem(param.normalize(param._default)) is None, name


def read_luigi_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "luigi.cfg")
    return parser


def test_luigi_cfg_sets_only_known_options_and_no_default_again() -> None:
    cfg = read_luigi_cfg()
    assert set(cfg.sections()) >= LUIGI_SECTIONS
    for section in cfg.sections():
        if section in LUIGI_SECTIONS:
            continue
        assert section in CLASSES, f"luigi.cfg: [{section}] is no section of pipeline/config.py"
        known = params(CLASSES[section])
        for option, text in cfg.items(section):
            assert option in known, f"luigi.cfg: [{section}] {option} is no option"
            if (section, option) in DELIBERATE:
                continue
            assert not same(known[option], text, known[option]._default), (
                f"luigi.cfg: [{section}] {option} = {text} repeats the default in config.py"
            )


def test_every_option_set_in_luigi_cfg_says_why() -> None:
    lines = (REPO / "luigi.cfg").read_text().splitlines()
    section = ""
    for before, line in zip(["", *lines], lines, strict=False):
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match[1]
        elif line and not line.startswith("#") and section in CLASSES:
            assert before.startswith("#"), f"luigi.cfg: no comment above {line!r} in [{section}]"


def test_retcodes_are_set_in_luigi_cfg() -> None:
    assert dict(read_luigi_cfg().items("retcode")) == {
        "already_running": "10",
        "missing_data": "20",
        "not_run": "25",
        "task_failed": "30",
        "scheduling_error": "35",
        "unhandled_exception": "40",
    }


def settings_table() -> dict[tuple[str, str], tuple[str, str]]:
    rows = documented_settings()
    assert {section for section, _ in rows} <= set(CLASSES), rows
    return rows


def test_the_settings_table_lists_every_option_with_its_default_and_range() -> None:
    rows = settings_table()
    declared = {(s, o): p for s, cls in CLASSES.items() for o, p in params(cls).items()}
    assert set(rows) == set(declared)
    for key, param in declared.items():
        default, allowed = rows[key]
        assert same(param, default, param._default), f"docs/settings.md default of {key}: {default}"
        assert allowed == getattr(param, "allowed", config.ANY_TEXT).text, key


def test_command_line_overrides_any_option() -> None:
    args = ["Insights", "--api-page-size", "7", "--housekeeping-retention-hours", "5"]
    with CmdlineParser.global_instance(args):
        assert config.api().page_size == 7
        assert config.housekeeping().retention_hours == 5
    assert config.api().page_size == 1000


def test_the_client_gets_every_setting_from_api() -> None:
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(ClientSettings))
    cfg = config.api(connect_timeout=1.5, read_timeout=2.5, retries=3, dns_retries=0,
                     refused_retries=1, backoff_factor=0.25, backoff_max=4.0,
                     rate_limit_requests=11, rate_limit_window=12.0, concurrency=6)  # fmt: skip
    assert cfg.client_settings() == ClientSettings(
        connect_timeout=1.5, read_timeout=2.5, retries=3, dns_retries=0, refused_retries=1,
        backoff_factor=0.25, backoff_max=4.0, rate_limit_requests=11, rate_limit_window=12.0,
        pool_size=6,
    )  # fmt: skip


def test_a_relative_data_dir_is_from_the_checkout_and_the_environment_from_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    assert config.paths().root() == REPO / "data"
    assert config.paths(data_dir="elsewhere").root() == REPO / "elsewhere"
    assert config.paths(data_dir="/srv/shop").root() == Path("/srv/shop")
    monkeypatch.setenv("PIPELINE_DATA_DIR", "mine")
    assert config.paths(data_dir="/srv/shop").root() == tmp_path / "mine"


PROBE = textwrap.dedent("""
    import luigi.configuration, pipeline
    c = luigi.configuration.get_config()
    print(c.get("retcode", "task_failed"), c.get("core", "logging_conf_file", ""))
""")


def probe(cwd: Path, **env: str) -> str:
    """What luigi reads after ``import pipeline`` in a fresh interpreter started in ``cwd``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "PIPELINE_"))}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env={**base, **env},
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return result.stdout.strip()


def test_the_checkouts_luigi_cfg_is_read_from_any_directory(tmp_path: Path) -> None:
    assert probe(tmp_path) == f"30 {REPO}/config/logging.conf"


def test_luigi_configuration_found_elsewhere_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "luigi.cfg").write_text("[retcode]\ntask_failed = 7\n")
    assert probe(tmp_path) == "7"
    other = tmp_path / "other.cfg"
    other.write_text("[retcode]\ntask_failed = 8\n[core]\nlogging_conf_file = rel.conf\n")
    (tmp_path / "luigi.cfg").unlink()
    assert probe(tmp_path, LUIGI_CONFIG_PATH=str(other)) == "8 rel.conf"


def locked(lock: str) -> dict[str, str]:
    """A lock file as name -> pinned version; every line is a pin, a comment or blank."""
    pins = {}
    for line in (REPO / lock).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([\w.+!-]+)", line)
            assert match, f"{lock}: not a plain pin: {line!r}"  # no URL, no path
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def declared(*keys: str) -> list[Requirement]:
    """The requirements of setup.cfg's ``install_requires`` and of the extras named."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    return [
        Requirement(line)
        for key in keys
        for line in setup.get("options" if key == "install_requires" else "options.extras_require",
                              key).strip().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("lock", "keys"),
    [("requirements.lock", ("install_requires",)),
     ("requirements-test.lock", ("install_requires", "test"))],
)  # fmt: skip
def test_each_lock_pins_its_dependencies_within_setup_cfg(lock: str, keys: tuple[str, ...]) -> None:
    pins = locked(lock)
    for req in declared(*keys):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {lock}"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])


def test_the_runtime_lock_holds_the_runtime_only_at_the_test_locks_versions() -> None:
    """A test venv runs what a runtime venv runs: the same versions; no test tool, no engine
    the runtime does not use, in the runtime lock."""
    runtime, test = locked("requirements.lock"), locked("requirements-test.lock")
    assert {name: test.get(name) for name in runtime} == runtime
    for absent in ("pytest", "ruff", "moto", "duckdb", "polars"):
        assert absent not in runtime and (absent == "polars") != (absent in test)


# -- every setting checked before a run (issue 10) ----------------------------------------------


def reload_with(path: Path, text: str) -> None:
    path.write_text(text)
    luigi.configuration.LuigiConfigParser.reload()


def test_the_shipped_settings_are_all_usable() -> None:
    assert config_check.settings_problems() == []
    config_check.check_settings(datetime(2026, 11, 25, 17), data_root=False)


def test_every_bad_setting_is_named_with_its_value_and_where_it_came_from_in_one_message(
    cfg_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reload_with(cfg_file, '[api]\npage_size = abc\n[quality]\nmax_bad_rows = {"x": -1}\n')
    monkeypatch.setenv("PIPELINE_API_URL", "ftp://files.example")
    args = ["Insights", "--api-retries", "-1", "--clean-min-product-price", "nan",
            "--run-progress-seconds", "0"]  # fmt: skip
    with CmdlineParser.global_instance(args), pytest.raises(config.ConfigError) as err:
        config_check.check_settings(datetime(2026, 11, 25, 17))
    assert str(err.value).splitlines() == [
        "6 setting(s) unusable; nothing was scheduled or written:",
        "  [api] base_url = 'ftp://files.example' (from environment PIPELINE_API_URL): "
        "must be an http(s) URL",
        f"  [api] page_size = 'abc' (from {cfg_file}): is not a whole number",
        "  [api] retries = '-1' (from command line --api-retries): must be 0 to 20",
        "  [clean] min_product_price = 'nan' (from command line --clean-min-product-price): "
        "must be >= 0",
        f"  [quality] max_bad_rows = '{{\"x\": -1}}' (from {cfg_file}): "
        "must be check names mapped to counts >= 0",
        "  [run] progress_seconds = '0' (from command line --run-progress-seconds): "
        "must be 0.1 to 3600",
        f"  (luigi configuration read: {REPO / 'luigi.cfg'}, {cfg_file})",
    ]


def test_a_value_is_traced_to_the_last_file_that_sets_it(cfg_file: Path) -> None:
    reload_with(cfg_file, "[housekeeping]\nretention_hours = 0\n")
    (problem,) = config_check.settings_problems()
    assert str(problem) == f"[housekeeping] retention_hours = '0' (from {cfg_file}): must be >= 1"
    param = config.housekeeping.retention_hours
    assert config_check.setting_source("housekeeping", "retention_hours", param)[1] == str(cfg_file)
    assert config_check.setting_source("api", "page_size", config.api.page_size) == (
        1000,
        "default",
    )


NOW = datetime(2026, 11, 25, 17, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hour", "refused"),
    [(datetime(2020, 1, 1, 0), False), (datetime(2026, 11, 25, 17), False),
     (datetime(2026, 11, 25, 18), False),  # 17:56 + 5 minutes of allowed skew is 18:01
     (datetime(2026, 11, 25, 19), True), (datetime(2030, 1, 1, 0), True)],
)  # fmt: skip
def test_an_hour_later_than_the_clock_allows_is_refused(hour: datetime, refused: bool) -> None:
    problem = config_check.hour_problem(hour, NOW)
    assert (problem is not None) == refused
    if problem is not None:
        assert str(problem) == (
            f"--date-hour = {hour:%Y-%m-%dT%H} (from the command line): is in the future: this "
            "machine's UTC clock says 2026-11-25T17:56 ([run] clock_skew_minutes = 5 allows "
            "hours up to 2026-11-25T18); `latest` would stay on it until then, hiding every run "
            "before it"
        )


def test_without_skew_the_current_hour_is_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    with CmdlineParser.global_instance(["Insights", "--run-clock-skew-minutes", "0"]):
        assert config.run().last_hour(NOW) == datetime(2026, 11, 25, 17)
        assert config_check.hour_problem(datetime(2026, 11, 25, 18), NOW) is not None


def unwritable(tmp_path: Path) -> Path:
    """A directory this process may not write into, whoever runs the tests."""
    if os.geteuid() != 0:
        path = tmp_path / "read-only"
        path.mkdir(mode=0o555)
        return path
    if not os.access("/proc/sys", os.W_OK):  # root writes anywhere but a read-only mount
        return Path("/proc/sys")
    pytest.skip("running as root without a read-only directory to try")


def test_a_data_root_that_cannot_hold_a_run_is_named_with_the_reason(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert config_check.data_root_problem(tmp_path / "new" / "data") is None  # created by the run
    assert config_check.data_root_problem(tmp_path) is None
    assert config_check.data_root_problem(a_file) == f"data root {a_file} is not a directory"
    assert config_check.data_root_problem(a_file / "data") == (
        f"data root {a_file}/data cannot be created: {a_file} is not a directory"
    )
    read_only = unwritable(tmp_path)
    assert config_check.data_root_problem(read_only) == (
        f"data root {read_only} is not writable by this user (uid {os.geteuid()})"
    )
    assert config_check.data_root_problem(read_only / "data") == (
        f"data root {read_only}/data cannot be created: {read_only} is not writable"
    )
    # wrote nothing: only what the test made is there (root: the read-only mount is elsewhere)
    assert set(tmp_path.iterdir()) == {a_file, read_only} - {Path("/proc/sys")}
    assert not (read_only / "data").exists() and a_file.read_text() == ""


def test_the_data_root_check_says_where_the_root_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(a_file))
    with pytest.raises(config.ConfigError) as err:
        config_check.check_settings(data_root=True)
    assert str(err.value).splitlines()[1] == (
        f"  data root {a_file} is not a directory (from environment PIPELINE_DATA_DIR)"
    )


LOCK_PROBE = textwrap.dedent("""
    import luigi.interface, pipeline
    from luigi.cmdline_parser import CmdlineParser
    with CmdlineParser.global_instance(["Insights"]):
        print(luigi.interface.core().lock_pid_dir)
""")


def test_luigis_pid_lock_is_per_user_unless_configured(tmp_path: Path) -> None:
    """luigi's own default, <tmp>/luigi, is made 0700 by whoever runs first (root, often)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LUIGI_", "PIPELINE_"))}

    def lock_dir() -> str:
        result = subprocess.run([sys.executable, "-c", LOCK_PROBE], cwd=tmp_path, env=base,
                                capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return result.stdout.strip()

    user = pwd.getpwuid(os.geteuid()).pw_name
    assert lock_dir() == str(Path(tempfile.gettempdir()) / f"luigi-{user}")
    (tmp_path / "luigi.cfg").write_text("[core]\nlock_pid_dir = /srv/locks\n")
    assert lock_dir() == "/srv/locks"
