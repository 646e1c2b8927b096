"""What a user might write instead of the pipeline: clean + insights as one DuckDB SQL script.

The benchmark's yardstick (``python -m pipeline.devtools.bench --only duckdb-sql``): the same
seven CSVs from the same raw JSON Lines, the way the DuckDB documentation suggests, with none of
the pipeline's quality gates, reconciliation, exact money, atomic writes or manifest. Its figures
are the ones the pipeline must beat (issue 12): time at least as short, memory lower.

    python pipeline/devtools/duckdb_sql.py <partition folder>

reads ``<partition>/jsons/*.jsonl`` and writes ``<partition>/duckdb-sql/*.csv``. Run as a file
it loads DuckDB and nothing of the pipeline, as a user's own script would (``python -m
pipeline.devtools.duckdb_sql`` works too, but loads the pipeline package and luigi first).

DuckDB is no dependency of the pipeline: it comes with the ``bench`` extra (and the test tools),
``.venv/bin/pip install -c requirements-test.lock -e '.[bench]'`` (``INSTALL``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: How to get DuckDB, which the pipeline itself does not install.
INSTALL = (
    "DuckDB is not installed: it is the benchmark's yardstick, not a dependency of the pipeline. "
    "Install it with: .venv/bin/pip install -c requirements-test.lock -e '.[bench]' "
    "(./run_pipeline.sh bootstrap --test installs it with the test tools)"
)

#: One statement per output, in the order a reader follows them.
SCRIPT = """
CREATE TABLE users AS
SELECT id AS user_id, firstName AS first_name, lastName AS last_name, gender, age,
       address.address AS street, address.city AS city, address.state AS state,
       address.postalCode AS postal_code, address.country AS country
FROM read_json('{jsons}/users.jsonl') ORDER BY user_id;

CREATE TABLE catalogue AS
SELECT id AS product_id, title AS name, category, coalesce(brand, '') AS brand, price
FROM read_json('{jsons}/products.jsonl') ORDER BY product_id;

CREATE TABLE lines AS
SELECT c.id AS cart_id, c.userId AS user_id, p.id AS product_id, p.quantity, p.price,
       p.price * p.quantity AS line_total, p.discountedTotal AS discounted_line_total
FROM read_json('{jsons}/carts.jsonl') AS c, unnest(c.products) AS t(p);

COPY users TO '{out}/cleaned_users.csv' (HEADER);
COPY catalogue TO '{out}/product_catalogue.csv' (HEADER);
COPY (SELECT * FROM catalogue WHERE price > {min_price}) TO '{out}/cleaned_products.csv' (HEADER);
COPY lines TO '{out}/cleaned_carts.csv' (HEADER);

COPY (
    SELECT l.user_id, u.first_name, u.age, u.city, count(DISTINCT l.cart_id) AS carts,
           sum(l.quantity) AS total_items, round(sum(l.line_total), 2) AS total_spent,
           round(sum(l.discounted_line_total), 2) AS total_spent_discounted
    FROM lines AS l LEFT JOIN users AS u USING (user_id)
    GROUP BY ALL ORDER BY l.user_id
) TO '{out}/user_summary.csv' (HEADER);

COPY (
    SELECT coalesce(c.category, '(unknown)') AS category,
           round(sum(l.line_total), 2) AS total_sales, sum(l.quantity) AS total_items_sold,
           round(sum(l.discounted_line_total), 2) AS total_sales_discounted
    FROM lines AS l LEFT JOIN catalogue AS c USING (product_id)
    GROUP BY ALL ORDER BY category
) TO '{out}/category_summary.csv' (HEADER);

COPY (
    SELECT l.cart_id, l.user_id, u.first_name, u.age, u.city, l.product_id,
           coalesce(c.name, '(unknown)') AS name, coalesce(c.category, '(unknown)') AS category,
           l.quantity, l.price, l.line_total, l.discounted_line_total
    FROM lines AS l
    LEFT JOIN users AS u USING (user_id)
    LEFT JOIN catalogue AS c USING (product_id)
) TO '{out}/cart_details.csv' (HEADER);
"""


def run(partition: Path, min_price: float = 50.0) -> Path:
    """Run the script on ``partition``'s raw files; return the folder of its CSVs."""
    import duckdb  # here, so that a missing DuckDB is told by main (INSTALL)

    out = partition / "duckdb-sql"
    out.mkdir(exist_ok=True)
    with duckdb.connect() as con:
        con.execute(SCRIPT.format(jsons=partition / "jsons", out=out, min_price=min_price))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="duckdb_sql.py")
    parser.add_argument("partition", type=Path, help="a partition folder holding jsons/")
    args = parser.parse_args(argv)
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print(f"duckdb_sql.py: {INSTALL}", file=sys.stderr)
        return 2
    print(run(args.partition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
