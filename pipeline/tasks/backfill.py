"""Backfill with luigi's own range tool: ``RangeHourly --of Insights``.

``RangeHourly`` asks ``Insights.bulk_complete`` which hours of its range are complete (one
listing of the data root, local or ``s3://``, and one read of ``latest``) and requires the missing
ones only: oldest first, or newest first with ``--reverse``, at most ``--task-limit`` of them. They
are scheduled together, so the workers of one luigid take different hours at once, and each hour
is an ordinary ``Insights`` (its claim, its report, retention). The hand-written ``Backfill`` task
this replaces required every hour of its range and did nothing the range tool cannot.

luigi imports its range tools only when ``[core] autoload_range`` is on (its default); importing
``RangeHourly`` here registers it for ``--module pipeline`` whatever that setting says.
"""

from luigi.tools.range import RangeHourly

__all__ = ["RangeHourly"]
