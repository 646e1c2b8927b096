"""Luigi tasks, one module per stage; each task wires inputs to one pure function and writes
its outputs atomically, and requires only the tasks whose outputs it reads.

Each task and what it requires, per hourly partition (15 edges)::

    Insights        <- HourReport
    HourReport      <- UserSummary, CategorySummary, CartDetails, HistoryHour
    HistoryHour     <- UserSummary, CategorySummary, CartDetails
    UserSummary     <- CleanCarts, CleanUsers
    CategorySummary <- CleanCarts, CleanProducts
    CartDetails     <- CleanCarts, CleanUsers, CleanProducts
    CleanCarts      <- ExtractCarts, CleanUsers, CleanProducts
    CleanUsers      <- ExtractUsers
    CleanProducts   <- ExtractProducts

``Insights`` writes manifest.json from every task's stats file and then moves ``latest``.
``InsightsRange`` (luigi's ``RangeHourly --of Insights``, ``tasks/backfill.py``) requires
the missing hours of a range.
"""

from pipeline.tasks.backfill import InsightsRange
from pipeline.tasks.clean import CleanCarts, CleanProducts, CleanUsers
from pipeline.tasks.extract import EXTRACTS, ExtractTask
from pipeline.tasks.insights import CartDetails, CategorySummary, UserSummary
from pipeline.tasks.publish import Insights
from pipeline.tasks.report import HistoryHour, HourReport

__all__ = [
    "EXTRACTS",
    "CartDetails",
    "CategorySummary",
    "CleanCarts",
    "CleanProducts",
    "CleanUsers",
    "ExtractTask",
    "HistoryHour",
    "HourReport",
    "Insights",
    "InsightsRange",
    "UserSummary",
]
