"""Every default is declared once, in pipeline/config.py; luigi.cfg and the README agree with it."""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline import config
from pipeline.api.client import ClientSettings
from tests.support import REPO

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


def test_the_sections_are_the_ones_luigi_cfg_and_the_readme_use() -> None:
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
    }
    assert all(cls.get_task_family() == name for name, cls in CLASSES.items())


@pytest.mark.parametrize("section", sorted(CLASSES))
def test_every_option_has_a_default_and_a_description(section: str) -> None:
    for name, param in params(CLASSES[section]).items():
        assert param._default is not luigi.parameter._no_value, f"[{section}] {name}"
        assert param.description and len(param.description) > 15, f"[{section}] {name}"


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


def readme_settings() -> dict[tuple[str, str], str]:
    """(section, option) -> default cell of the README's settings table."""
    text = (REPO / "README.md").read_text()
    table = text.split("| section | option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows: dict[tuple[str, str], str] = {}
    section = ""
    for line in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        section = cells[0].strip("`[]") or section
        assert section in CLASSES or section in LUIGI_SECTIONS, line
        if section in CLASSES:
            rows[(section, cells[1].strip("`"))] = cells[2].strip("`")
    return rows


def test_the_readme_settings_table_lists_every_option_with_its_default() -> None:
    rows = readme_settings()
    declared = {(s, o): p for s, cls in CLASSES.items() for o, p in params(cls).items()}
    assert set(rows) == set(declared)
    for key, param in declared.items():
        assert same(param, rows[key], param._default), f"README default of {key}: {rows[key]}"


def test_command_line_overrides_any_option() -> None:
    args = ["Insights", "--api-page-size", "7", "--housekeeping-retention-hours", "5"]
    with CmdlineParser.global_instance(args):
        assert config.api().page_size == 7
        assert config.housekeeping().retention_hours == 5
    assert config.api().page_size == 1000


def test_the_client_gets_every_setting_from_api() -> None:
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(ClientSettings))
    cfg = config.api(connect_timeout=1.5, read_timeout=2.5, retries=3, backoff_factor=0.25,
                     backoff_max=4.0, rate_limit_requests=11, rate_limit_window=12.0,
                     concurrency=6)  # fmt: skip
    assert cfg.client_settings() == ClientSettings(
        connect_timeout=1.5, read_timeout=2.5, retries=3, backoff_factor=0.25, backoff_max=4.0,
        rate_limit_requests=11, rate_limit_window=12.0, pool_size=6,
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


def locked() -> dict[str, str]:
    """requirements.lock as name -> pinned version; every line is a pin, a comment or blank."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([\w.+!-]+)", line)
            assert match, f"requirements.lock: not a plain pin: {line!r}"  # no URL, no path
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_lock_pins_every_runtime_and_test_dependency_within_setup_cfg() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    wanted = [
        Requirement(line)
        for key in ("install_requires", "test")
        for line in setup.get("options" if key == "install_requires" else "options.extras_require",
                              key).strip().splitlines()
    ]  # fmt: skip
    pins = locked()
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
