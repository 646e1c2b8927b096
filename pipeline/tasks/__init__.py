"""Luigi tasks, one module per stage; each task wires inputs to one pure function and writes
its outputs atomically.

Graph, per hourly partition::

    ExtractEndpoint(carts|products|users) -> CleanUsers, CleanProducts, CleanCarts
        -> UserSummary, CategorySummary, CartDetails -> HistoryHour -> HourReport
        -> Insights (manifest.json, `latest`)
"""

from pipeline.tasks.clean import CleanCarts, CleanProducts, CleanUsers
from pipeline.tasks.extract import ExtractEndpoint
from pipeline.tasks.insights import CartDetails, CategorySummary, UserSummary
from pipeline.tasks.publish import Insights
from pipeline.tasks.report import HistoryHour, HourReport

__all__ = [
    "CartDetails",
    "CategorySummary",
    "CleanCarts",
    "CleanProducts",
    "CleanUsers",
    "ExtractEndpoint",
    "HistoryHour",
    "HourReport",
    "Insights",
    "UserSummary",
]
