"""Hourly DummyJSON snapshot pipeline: `luigi --module pipeline Insights`, `python -m pipeline`.

Importing the package registers the Luigi tasks (what ``--module pipeline`` needs) and, when luigi
found no configuration of its own, points it at the checkout's ``luigi.cfg``, so
``[retcode]`` and the logging setup apply from any working directory. It also keeps luigi's pid
lock per user (``luigi_config.lock_pid_dir``), so a run as root never blocks the service user.
And it lets a plain ``luigi --module pipeline`` run write its metrics (``plain_metrics``).
"""

from pipeline import plain_metrics
from pipeline.luigi_config import use_per_user_lock_dir, use_project_config

use_project_config()
use_per_user_lock_dir()
plain_metrics.install()

from pipeline.tasks import (  # noqa: E402  (after the configuration is in place)
    CartDetails,
    CategorySummary,
    CleanCarts,
    CleanProducts,
    CleanUsers,
    ExtractTask,
    Insights,
    UserSummary,
)

__all__ = [
    "CartDetails",
    "CategorySummary",
    "CleanCarts",
    "CleanProducts",
    "CleanUsers",
    "ExtractTask",
    "Insights",
    "UserSummary",
]
