"""Hourly DummyJSON snapshot pipeline: ``luigi --module pipeline Insights``."""

from pipeline.tasks import (
    Backfill,
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
    "Backfill",
    "CartDetails",
    "CategorySummary",
    "CleanCarts",
    "CleanProducts",
    "CleanUsers",
    "ExtractTask",
    "Insights",
    "UserSummary",
]
