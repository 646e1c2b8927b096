"""``python -m pipeline``: see ``pipeline.cli``."""

from pipeline.cli import stoppable_main

raise SystemExit(stoppable_main())
