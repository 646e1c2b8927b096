"""``Nothing``, the task of the benchmark's ``startup`` scenario: ``luigi --module
pipeline.devtools.startup Nothing`` imports the pipeline as ``--module pipeline`` does and has
nothing to do, so its time is luigi's and the pipeline's start-up alone.

A module of its own because ``pipeline.devtools.bench`` loads numpy, the data generator and the
fake API server, which no real start-up loads (a third more CPU).
"""

from __future__ import annotations

import luigi


class Nothing(luigi.WrapperTask):
    """Complete at once: it requires nothing and writes nothing."""

    date_hour = luigi.DateHourParameter()
