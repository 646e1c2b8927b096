"""Hourly DummyJSON snapshot pipeline: ``luigi --module pipeline Insights``."""

from pipeline.tasks import (
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
