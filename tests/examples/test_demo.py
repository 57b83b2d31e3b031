"""`make demo`: the retail example end to end, in a copy under a temporary directory."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail"


@pytest.mark.slow
def test_retail_demo_full_then_incremental(tmp_path):
    demo = tmp_path / "retail"
    shutil.copytree(EXAMPLE, demo, ignore=shutil.ignore_patterns(".demo", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCE_DB_", "TARGET_DB_"))}
    env.pop("RETAIL_SOURCE_URL", None)
    env.pop("CRANE_WAREHOUSE", None)
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", str(demo / "run_demo.sh")], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "recent runs" in done.stdout and "MISMATCH" not in done.stdout
    # the run history shows all of day 2: the six incremental loads besides the model loads
    history = done.stdout.split("7. Run history")[1].split("8. Source and warehouse")[0]
    loads = {line.split()[1] for line in history.splitlines() if " success " in line}
    assert {"customers", "inventory", "order_items", "orders", "products", "stores"} <= loads
    # the star schema's history queries, the quality checks and their scorecard ran
    assert "AS OF the sale" in done.stdout and "Revenue by product price version" in done.stdout
    assert "32 checks: 28 pass, 4 warn" in done.stdout
    assert "score gold.fact_sales: 100/100" in done.stdout
    assert (demo / ".demo" / "quality.html").stat().st_size > 1000
    # the same day as one scheduled DAG: every task succeeded and the run history shows it
    assert "retail_daily run" in done.stdout and "DAG runs" in done.stdout
    assert "failed" not in done.stdout.split("12. The whole day as one DAG")[1]

    con = duckdb.connect(str(demo / ".demo" / "warehouse.duckdb"), read_only=True)
    counts = {
        table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        for table in ("stores", "products", "customers", "orders", "order_items", "inventory")
    }
    # 12 + 1 stores; 60 + 3 - 1 products; 300 + 20 customers; 2000 + 100 + 5 orders;
    # two daily stock counts (60 then 62 products x 12 stores)
    assert counts == {
        "stores": 13,
        "products": 62,
        "customers": 320,
        "orders": 2105,
        "order_items": 5248,
        "inventory": 1464,
    }
    assert con.execute("SELECT status FROM orders WHERE order_id = 17").fetchone() == ("refunded",)
    assert con.execute("SELECT count(*) FROM products WHERE product_id = 60").fetchone() == (0,)
    assert con.execute("SELECT name FROM stores WHERE store_id = 3").fetchone() == ("Paris Opera",)
    # the transform cleaned e-mails on the way in
    assert con.execute(
        "SELECT count(*) FROM customers WHERE email <> lower(trim(email))"
    ).fetchone() == (0,)
    _assert_star_schema(con)
    runs = con.execute(
        "SELECT pipeline, status, rows_extracted FROM _crane.runs"
        " WHERE pipeline NOT LIKE 'model.%' ORDER BY started_at"
    ).fetchall()
    model_runs = con.execute(
        "SELECT status, count(*) FROM _crane.runs WHERE pipeline LIKE 'model.%' GROUP BY ALL"
    ).fetchall()
    con.close()
    # 7 objects, loaded on day 1, day 2 and once more by the daily DAG (a rerun: no change)
    assert model_runs == [("success", 21)]
    assert len(runs) == 18 and {status for _, status, _ in runs} == {"success"}
    second = {pipeline: rows for pipeline, _, rows in runs[6:12]}
    # incremental: 31 delivered + 100 new + the late update (found by the 1h lookback), plus
    # whatever else the lookback window re-reads (merged idempotently)
    assert second["orders"] >= 132 and second["orders"] < 2100
    assert 35 <= second["customers"] < 300 and 267 <= second["order_items"] < 4967
    events = [json.loads(e) for e in (demo / ".demo" / "lineage.jsonl").read_text().splitlines()]
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    assert len(complete) == 18 and len(events) == 36
    orders = next(e for e in complete if e["job"]["name"] == "orders")
    assert orders["inputs"][0]["name"] == "orders"  # SQLite: the file is the namespace
    fields = [f["name"] for f in orders["inputs"][0]["facets"]["schema"]["fields"]]
    assert fields[0] == "order_id" and "updated_at" in fields


def _assert_star_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Built by `crane model apply` + `crane model load` on day 1 and again on day 2."""

    def one(sql: str) -> tuple:
        return con.execute(sql).fetchone()

    # every order line once; every inventory count once; stores Type 1 (+ unknown member)
    assert one("SELECT count(*) FROM gold.fact_sales") == (5248,)
    assert one("SELECT count(*), count(DISTINCT snapshot_date_key) FROM gold.fact_inventory") == (
        1464,
        2,
    )
    assert one("SELECT count(*) FROM gold.dim_store") == (14,)
    assert one("SELECT name FROM gold.dim_store WHERE store_id = 3") == ("Paris Opera",)
    # the five repriced products have two versions, the old one closed
    assert con.execute(
        "SELECT product_id, count(*), count(*) FILTER (WHERE is_current) FROM gold.dim_product"
        " GROUP BY 1 HAVING count(*) > 1 ORDER BY 1"
    ).fetchall() == [(p, 2, 1) for p in range(1, 6)]
    # customers who moved: two versions each, never two current ones
    movers = one(
        "SELECT count(*) FROM (SELECT customer_id FROM gold.dim_customer"
        " GROUP BY 1 HAVING count(*) = 2 AND count(*) FILTER (WHERE is_current) = 1)"
    )[0]
    assert 10 <= movers <= 15
    assert one(
        "SELECT count(*) FROM (SELECT customer_id FROM gold.dim_customer WHERE is_current"
        " GROUP BY 1 HAVING count(*) > 1)"
    ) == (0,)
    # every sale points at the customer version valid when it was placed
    assert one(
        "SELECT count(*) FROM gold.fact_sales f JOIN orders o USING (order_id)"
        " JOIN gold.dim_customer d ON d.customer_key = f.customer_key"
        " WHERE NOT (o.placed_at >= d.effective_from"
        " AND o.placed_at < coalesce(d.effective_to, TIMESTAMP '9999-12-31'))"
        " AND o.placed_at >= (SELECT min(effective_from) FROM gold.dim_customer x"
        " WHERE x.customer_id = d.customer_id)"
    ) == (0,)
    # a mover's order placed after the move is at the new address, earlier ones at the old
    split = con.execute(
        "SELECT f.order_id > 2100, bool_and(d.is_current) FROM gold.fact_sales f"
        " JOIN gold.dim_customer d ON d.customer_key = f.customer_key"
        " WHERE d.customer_id = 25 GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert split == [(False, False), (True, True)]


@pytest.mark.slow
def test_retail_demo_on_the_conventional_source_variables(tmp_path, pg_database):
    """With SOURCE_DB_* exported (as crane.yml's comment invites), the shop is created in
    that PostgreSQL database and loaded from it; the password is never shown, and a
    TARGET_DB_* of the user's shell does not move the demo's DuckDB warehouse. The shop
    used to be created in SQLite while crane read PostgreSQL, and every load failed."""
    database = pg_database.rsplit("/", 1)[1]  # conftest's fresh database, by name
    demo = tmp_path / "retail"
    shutil.copytree(EXAMPLE, demo, ignore=shutil.ignore_patterns(".demo", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("RETAIL_SOURCE_URL", "CRANE_WAREHOUSE")}
    password = "Sh0p@pw:50%/x"
    env.update(
        PYTHON=sys.executable,
        SOURCE_DB_HOST="127.0.0.1",
        SOURCE_DB_NAME=database,
        SOURCE_DB_USER="postgres",
        SOURCE_DB_PASSWORD=password,
        TARGET_DB_HOST="warehouse.invalid",
        TARGET_DB_NAME="dwh",
    )
    done = subprocess.run(
        ["bash", str(demo / "run_demo.sh")], env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"source database: postgresql://postgres:***@127.0.0.1/{database}" in done.stdout
    assert "Sh0p" not in output and "Sh0p%40" not in output
    assert "MISMATCH" not in done.stdout and "failed" not in done.stdout
    con = duckdb.connect(str(demo / ".demo" / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (320,)
    sources = {s for (s,) in con.execute("SELECT DISTINCT source FROM _crane.runs").fetchall()}
    con.close()
    assert {s.split("#")[0] for s in sources if s} == {
        f"postgresql://postgres:***@127.0.0.1/{database}"
    }
