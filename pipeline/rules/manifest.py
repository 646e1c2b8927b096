"""The partition's manifest: what was read, what was written, and the proof that it adds up.

Assembled from the stats file every task leaves in the partition folder (``layout.STATS``), so
it describes the partition as it was produced, even when the tasks ran in different runs (a
resume after a failure), and ``Insights`` needs no dependency on the tasks it only reports on.
"""

from __future__ import annotations

from typing import Any

from pipeline import clock
from pipeline.rules.allowlist import new_fields
from pipeline.rules.insights import reconcile
from pipeline.schema import ENDPOINTS
from pipeline.storage.atomic import read_json
from pipeline.storage.layout import STATS, Partition

TIMING = ("task", "started", "finished", "seconds")


def build(partition: Partition) -> dict[str, Any]:
    """Manifest of ``partition`` from the stats files of its tasks (all must exist).

    Raises ReconciliationError when the summaries and the API's cart totals disagree. It names
    the run that publishes the hour and its code version (``lineage``).
    """
    from pipeline import lineage

    facts = assemble(partition.name, {key: read_json(partition.stats(key)) for key in STATS})
    made = lineage.current(facts["source"])  # the run publishing the hour, and its code
    return {**facts, "run_id": made.run_id, "code_version": made.code_version}


def assemble(partition: str, stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Manifest of the partition named ``partition`` from its tasks' stats, keyed as ``STATS``."""
    carts = stats["clean_carts"]
    reconciliation = reconcile(
        api_cart_total=carts["api_cart_total"],
        line_total=carts["line_total"],
        user_total_spent=stats["user_summary"]["money_total"],
        category_total_sales=stats["category_summary"]["money_total"],
        carts=carts["carts"],
    )
    extracts = [stats[f"extract_{e}"] for e in ENDPOINTS]
    rows = {name: n for facts in stats.values() for name, n in facts.get("rows", {}).items()}
    rows.update({f"{s['endpoint']}.jsonl": s["records"] for s in extracts})
    # stats written before "source" existed (a partition resumed across an upgrade) have "url"
    sources = sorted({s.get("source") or s["url"].rsplit("/", 1)[0] for s in extracts})
    return {
        "partition": partition,
        "source": sources[0] if len(sources) == 1 else sources,
        "api_totals": {s["endpoint"]: s["api_total"] for s in extracts},
        "requests": sum(s["requests"] for s in extracts),
        "rows": dict(sorted(rows.items())),
        "reconciliation": reconciliation,
        "quality_warnings": carts.get("quality_warnings", []),
        "checks": stats["hour_report"].get("checks", []),
        "schema_drift": schema_drift(extracts),
        "min_product_price": stats["clean_products"]["min_product_price"],
        "tasks": {key: {k: s[k] for k in TIMING} for key, s in stats.items()},
        "written": clock.now().isoformat(timespec="milliseconds"),
    }


def schema_drift(extracts: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Per endpoint, the fields the API added (sent, not declared: dropped) and the declared
    fields it did not send, from the extracts' stats (older ones: added from what they dropped)."""
    return {
        s["endpoint"]: {
            "added": s.get("new_fields", new_fields(s["endpoint"], s.get("dropped_fields", []))),
            "missing": s.get("missing_fields", []),
        }
        for s in extracts
    }
