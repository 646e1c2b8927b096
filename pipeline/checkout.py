"""Where the checkout is: its ``luigi.cfg``, ``config/``, ``run_pipeline.sh`` and default folders.

A module of constants only, so that anything (the storage layer included) may ask without
importing luigi's configuration.
"""

from pathlib import Path

#: The checkout: the project's luigi.cfg, config/ and the default data root live here.
CHECKOUT = Path(__file__).resolve().parents[1]

#: Where ``python -m pipeline demo`` writes when it is given no folder.
DEMO_DIR = CHECKOUT / "data-demo"
