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

    con = duckdb.connect(str(demo / ".demo" / "warehouse.duckdb"), read_only=True)
    counts = {
        table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        for table in ("stores", "products", "customers", "orders", "order_items")
    }
    # 12 + 1 stores; 60 + 3 - 1 products; 300 + 20 customers; 2000 + 100 orders
    assert counts == {
        "stores": 13,
        "products": 62,
        "customers": 320,
        "orders": 2100,
        "order_items": 5234,
    }
    assert con.execute("SELECT status FROM orders WHERE order_id = 17").fetchone() == ("refunded",)
    assert con.execute("SELECT count(*) FROM products WHERE product_id = 60").fetchone() == (0,)
    assert con.execute("SELECT name FROM stores WHERE store_id = 3").fetchone() == ("Paris Opera",)
    # the transform cleaned e-mails on the way in
    assert con.execute(
        "SELECT count(*) FROM customers WHERE email <> lower(trim(email))"
    ).fetchone() == (0,)
    runs = con.execute(
        "SELECT pipeline, status, rows_extracted FROM _crane.runs ORDER BY started_at"
    ).fetchall()
    con.close()
    assert len(runs) == 10 and {status for _, status, _ in runs} == {"success"}
    second = {pipeline: rows for pipeline, _, rows in runs[5:]}
    # incremental: 31 delivered + 100 new + the late update (found by the 1h lookback), plus
    # whatever else the lookback window re-reads (merged idempotently)
    assert second["orders"] >= 132 and second["orders"] < 2100
    assert 35 <= second["customers"] < 300 and 267 <= second["order_items"] < 4967
    events = [json.loads(e) for e in (demo / ".demo" / "lineage.jsonl").read_text().splitlines()]
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    assert len(complete) == 10 and len(events) == 20
    orders = next(e for e in complete if e["job"]["name"] == "orders")
    assert orders["inputs"][0]["name"] == "orders"  # SQLite: the file is the namespace
    fields = [f["name"] for f in orders["inputs"][0]["facets"]["schema"]["fields"]]
    assert fields[0] == "order_id" and "updated_at" in fields
