"""Questions the retail star schema answers once history is kept (run after `crane model load`).

    python analytics.py [--warehouse .demo/warehouse.duckdb]

Each query reads the gold schema that `crane model apply` + `crane model load`
built: a customer's address history, revenue by product price version, sales
attributed to the address the customer had when buying, and the daily stock value.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

QUERIES: list[tuple[str, str]] = [
    (
        "Address history of the customers who moved (SCD Type 2 on city/country)",
        """
        SELECT customer_id, city, country, effective_from::TIMESTAMP(0) AS valid_from,
               effective_to::TIMESTAMP(0) AS valid_to, is_current
        FROM gold.dim_customer
        WHERE customer_id IN (SELECT customer_id FROM gold.dim_customer
                              GROUP BY customer_id HAVING count(*) > 1)
        ORDER BY customer_id, effective_from
        LIMIT 6
        """,
    ),
    (
        "Revenue by product price version (SCD Type 2 on price)",
        """
        SELECT p.product_id, p.price, p.effective_from::TIMESTAMP(0) AS valid_from,
               p.is_current, count(f.order_id) AS lines, coalesce(sum(f.sales_amount), 0) AS revenue
        FROM gold.dim_product p
        LEFT JOIN gold.fact_sales f ON f.product_key = p.product_key
        WHERE p.product_id IN (SELECT product_id FROM gold.dim_product
                               GROUP BY product_id HAVING count(*) > 1)
        GROUP BY ALL
        ORDER BY p.product_id, valid_from
        LIMIT 6
        """,
    ),
    (
        "Sales of movers attributed to their address AS OF the sale (vs their address today)",
        """
        SELECT d.customer_id, d.city AS city_at_sale, c.city AS city_today,
               count(DISTINCT f.order_id) AS orders, sum(f.sales_amount) AS revenue
        FROM gold.fact_sales f
        JOIN gold.dim_customer d ON d.customer_key = f.customer_key
        JOIN gold.dim_customer c ON c.customer_id = d.customer_id AND c.is_current
        WHERE d.customer_id IN (SELECT customer_id FROM gold.dim_customer
                                GROUP BY customer_id HAVING count(*) > 1)
        GROUP BY d.customer_id, d.city, c.city
        ORDER BY d.customer_id, d.city = c.city
        LIMIT 8
        """,
    ),
    (
        "Daily inventory snapshot (semi-additive: summed across stores, not days)",
        """
        SELECT dd.full_date AS day, sum(i.quantity_on_hand) AS units_on_hand,
               sum(i.inventory_value) AS stock_value, sum(i.units_received) AS received
        FROM gold.fact_inventory i JOIN gold.dim_date dd ON dd.date_key = i.snapshot_date_key
        GROUP BY ALL ORDER BY day
        """,
    ),
]


def _table(title: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    line = "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([f"-- {title}", line, "  ".join("-" * w for w in widths), *body, ""])


def main(argv: Sequence[str] | None = None) -> int:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, default=HERE / ".demo" / "warehouse.duckdb")
    args = parser.parse_args(argv)
    con = duckdb.connect(str(args.warehouse), read_only=True)
    try:
        for title, sql in QUERIES:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description or []]
            print(_table(title, names, cur.fetchall()))
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
