"""The console summary of a complete hour: six lines, printed at the end of every
successful run and by ``python -m pipeline.report.summary [--date-hour H]`` for any complete
hour without running anything.

It compares the hour with the earlier hour its report compared with (``report.hour``), so the
two always agree. It reads only small files (the manifests, the report's stats and
``category_summary.csv`` of the hour and of that earlier hour), so it costs the same at a
million carts as at six. The data root may be a local folder or an ``s3://`` prefix
(``storage.fs``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

from pipeline.checkout import DEMO_DIR
from pipeline.report.hour import compared_with
from pipeline.rules.numbers import count, money, percent, tenths_percent
from pipeline.rules.tables import category_table
from pipeline.storage import formats
from pipeline.storage.atomic import read_json
from pipeline.storage.fs import Location, StoreError, exists, local_copy, parse_root
from pipeline.storage.latest import latest_link, latest_partition
from pipeline.storage.layout import PARTITION_FORMAT, PARTITION_RE, Partition
from pipeline.suggested import script, shown

log = logging.getLogger("luigi-interface.pipeline")


class NoSummary(ValueError):
    """The hour has no complete snapshot to summarise."""


def _partition(root: Location, name: str) -> Partition:
    if not PARTITION_RE.match(name):
        raise NoSummary(f"{name!r} is not an hour like 2026-11-25T17")
    return Partition(root, datetime.strptime(name, PARTITION_FORMAT))


def _sales(part: Partition) -> tuple[int, int, str, int]:
    """Revenue and discounted revenue in cents, the top category and its revenue."""
    with local_copy(part.insight("category_summary")) as path:
        cats = category_table(formats.read_csv(path))
    top = cats.iloc[0] if len(cats) else None
    return (
        int(cats["revenue"].sum()),
        int(cats["discounted"].sum()),
        "none" if top is None else str(top["category"]),
        0 if top is None else int(top["revenue"]),
    )


def summary_lines(root: Location, name: str) -> list[str]:
    """The summary of complete hour ``name`` under data root ``root``."""
    part = _partition(root, name)
    if not exists(part.manifest):
        raise NoSummary(f"partition {name} under {root} is not complete (no manifest.json)")
    manifest = read_json(part.manifest)
    rows = manifest.get("rows", {})
    carts = int(manifest["reconciliation"]["carts"])
    revenue, discounted, top, top_revenue = _sales(part)
    lines = [
        f"Snapshot {name}: {count(carts)} carts, {count(rows.get('cleaned_carts.csv', 0))} lines, "
        f"{count(rows.get('cleaned_users.csv', 0))} users, "
        f"{count(rows.get('product_catalogue.csv', 0))} products",
        f"Sales: {money(revenue)} at list prices, {money(discounted)} after discounts",
        f"Top category: {top}, {money(top_revenue)} "
        f"({percent(tenths_percent(top_revenue, revenue))} of sales)",
    ]
    previous = compared_with(root, name)  # the hour the report compared with: they agree
    if previous is None:
        lines.append("Change: no earlier complete snapshot to compare with")
    elif not exists(_partition(root, previous).manifest):
        lines.append(f"Change: not shown; the report compared with {previous}, removed since")
    else:
        before = _partition(root, previous)
        before_carts = int(read_json(before.manifest)["reconciliation"]["carts"])
        before_revenue = _sales(before)[0]
        change = revenue - before_revenue
        rate = (
            f" ({percent(tenths_percent(change, before_revenue), sign=True)})"
            if before_revenue
            else ""
        )
        lines.append(
            f"Change since {previous}: carts {count(carts - before_carts, sign=True)}, "
            f"revenue {money(change, sign=True)}{rate}"
        )
    report = part.report_dir / "index.html"
    lines.append(f"Report: {report}" if exists(report) else "Report: none for this hour")
    current = latest_partition(root)
    lines.append(f"Latest: {latest_link(root)} -> {current or 'nothing yet'}")
    return lines


def print_summary(root: Location, name: str) -> None:
    """Print the summary to stdout; a problem is a warning, never a failed run."""
    try:
        text = "\n".join(summary_lines(root, name))
    except Exception as exc:  # cosmetic: the run's outputs are complete and published
        log.warning("no summary of %s: %s: %s", name, type(exc).__name__, exc)
        return
    print(text, flush=True)


def _demo_hint(root: Location) -> str:
    """Where the demo's snapshots are, when ``root`` has none and the demo's folder has one."""
    if root == DEMO_DIR or latest_partition(DEMO_DIR) is None:
        return ""
    return f"; the demo writes to {DEMO_DIR}: {script()} report --data-dir {shown(DEMO_DIR)}"


def main(argv: list[str] | None = None) -> int:
    """Print the summary of an existing hour (default: the one ``latest`` points to)."""
    from pipeline.config import paths  # here: reading luigi's config is not free

    parser = argparse.ArgumentParser(
        prog="python -m pipeline report",
        description="Print the summary of a complete hourly snapshot; runs nothing.",
    )
    parser.add_argument("--date-hour", help="the hour, e.g. 2026-11-25T17 (default: latest)")
    parser.add_argument(
        "--data-dir", help="data root, a folder or s3://bucket/prefix (default: the pipeline's)"
    )
    args = parser.parse_args(argv)
    try:
        root = parse_root(args.data_dir) if args.data_dir else paths().root()
    except ValueError as exc:  # DataRootError, or config's ConfigError
        print(f"report: {exc}", file=sys.stderr)
        return 1
    name = args.date_hour or latest_partition(root)
    if name is None:
        print(f"report: no complete snapshot under {root} yet (no `latest`){_demo_hint(root)}",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        lines = summary_lines(root, name)
    except (NoSummary, OSError, KeyError, ValueError, StoreError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
