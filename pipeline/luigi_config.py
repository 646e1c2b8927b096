"""How luigi finds its configuration and its pid lock, from wherever the pipeline is started.

``pipeline/__init__.py`` calls both before luigi reads ``[retcode]``, sets up logging or makes a
task: ``use_project_config`` (the checkout's ``luigi.cfg`` when luigi finds none of its own) and
``use_per_user_lock_dir`` (a pid-lock directory per user).
"""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path

import luigi.configuration

from pipeline.checkout import CHECKOUT

#: luigi's configuration of the checkout, read when luigi finds none of its own.
PROJECT_CONFIG = CHECKOUT / "luigi.cfg"


def config_files() -> list[Path]:
    """The configuration files luigi reads, in order (a later one overrides an earlier one)."""
    paths_ = luigi.configuration.LuigiConfigParser._config_paths
    return [Path(p).absolute() for p in paths_ if os.path.isfile(p)]


def use_project_config() -> bool:
    """Make luigi read the checkout's ``luigi.cfg`` when it finds no configuration of its own.

    luigi reads ``luigi.cfg`` (and ``client.cfg``) from the working directory, ``/etc/luigi/``
    and ``LUIGI_CONFIG_PATH`` only, so ``luigi --module pipeline Insights`` started anywhere but
    the checkout would lose ``[retcode]`` (a failed run exiting 0) and the logging setup. luigi
    imports ``--module`` before it reads ``[retcode]``, sets up logging or makes any task, so
    calling this from ``pipeline/__init__.py`` is early enough. A relative ``[core]
    logging_conf_file`` is made absolute against the checkout, since luigi would resolve it
    against the cwd. Returns whether the project's file was added.
    """
    if os.environ.get("LUIGI_CONFIG_PARSER", "cfg") != "cfg":
        return False  # a toml configuration was asked for; leave luigi to it
    parser = luigi.configuration.LuigiConfigParser
    # luigi's own search list (cwd-relative names included), LUIGI_CONFIG_PATH appended to it.
    if any(os.path.isfile(path) for path in parser._config_paths):
        return False
    luigi.configuration.add_config_path(str(PROJECT_CONFIG))
    config = luigi.configuration.get_config()
    logging_conf = config.get("core", "logging_conf_file", "")
    if logging_conf and not os.path.isabs(logging_conf):
        config.set("core", "logging_conf_file", str(CHECKOUT / logging_conf))
    return True


def lock_pid_dir() -> Path:
    """Where luigi keeps its pid lock for this user: ``<tmp>/luigi-<user>``.

    luigi's default, ``<tmp>/luigi``, is created mode 0700 by whoever runs first, so after one
    run as root every other user's run exits 40 on it. Each user gets a directory of their own;
    runs of one hour by two users still exclude each other through the partition's lock.
    """
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    return Path(tempfile.gettempdir()) / f"luigi-{user}"


def use_per_user_lock_dir() -> bool:
    """Give luigi ``lock_pid_dir()`` unless ``[core] lock_pid_dir`` is configured (the command
    line's ``--lock-pid-dir`` still wins). Returns whether it was set."""
    config = luigi.configuration.get_config()
    if config.has_option("core", "lock_pid_dir") or config.has_option("core", "lock-pid-dir"):
        return False
    config.set("core", "lock_pid_dir", str(lock_pid_dir()))
    return True
