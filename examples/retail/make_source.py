"""The retail demo's operational database: create it, change it, compare it with the warehouse.

    python make_source.py create            # customers, products, stores, orders, order_items
    python make_source.py change            # updates + inserts + one late update + one delete
    python make_source.py compare           # source vs warehouse row counts (exit 1 if they differ)

The database is the demo project's ``source`` connection, as ``crane run`` sees
it: SQLite at ``.demo/shop.sqlite`` beside this file unless ``RETAIL_SOURCE_URL``
or the ``SOURCE_DB_*`` variables (or ``--url``) name a PostgreSQL or MariaDB database.
The data is seeded, so every run produces the same rows, with the mess real
shops have: duplicate e-mails in different case, malformed e-mails, stray
spaces and case in statuses, missing phones and cities, online orders with no
store, and an update that commits late with an older timestamp.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
WAREHOUSE = HERE / ".demo" / "warehouse.duckdb"
TABLES = ("stores", "products", "customers", "orders", "order_items", "inventory")
LATE_ORDER = 17  # the order whose update commits late, with an older timestamp

_TYPES = {
    "sqlite": {"ts": "TIMESTAMP", "bool": "BOOLEAN"},
    "postgresql": {"ts": "TIMESTAMP", "bool": "BOOLEAN"},
    "mysql": {"ts": "DATETIME", "bool": "BOOLEAN"},
}
DDL = {
    "stores": "store_id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, city VARCHAR(100),"
    " country CHAR(2) NOT NULL, opened_on DATE, updated_at {ts} NOT NULL",
    "products": "product_id INTEGER PRIMARY KEY, sku VARCHAR(20) NOT NULL, name VARCHAR(200)"
    " NOT NULL, category VARCHAR(50), price DECIMAL(10,2) NOT NULL, active {bool} NOT NULL,"
    " updated_at {ts} NOT NULL",
    "customers": "customer_id INTEGER PRIMARY KEY, email VARCHAR(200), first_name VARCHAR(100)"
    " NOT NULL, last_name VARCHAR(100) NOT NULL, phone VARCHAR(30), city VARCHAR(100),"
    " country CHAR(2), created_at {ts} NOT NULL, updated_at {ts} NOT NULL",
    "orders": "order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, store_id INTEGER,"
    " status VARCHAR(20) NOT NULL, order_date DATE NOT NULL, total DECIMAL(12,2) NOT NULL,"
    " updated_at {ts} NOT NULL, placed_at {ts}",
    "order_items": "order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, product_id INTEGER"
    " NOT NULL, quantity INTEGER NOT NULL, unit_price DECIMAL(10,2) NOT NULL,"
    " updated_at {ts} NOT NULL, PRIMARY KEY (order_id, line_no)",
    # stock counted at the end of each day, per product and store (the daily snapshot)
    "inventory": "snapshot_date DATE NOT NULL, product_id INTEGER NOT NULL, store_id INTEGER"
    " NOT NULL, quantity_on_hand INTEGER NOT NULL, units_received INTEGER NOT NULL,"
    " updated_at {ts} NOT NULL, PRIMARY KEY (snapshot_date, product_id, store_id)",
}
COLUMNS = {
    "stores": ["store_id", "name", "city", "country", "opened_on", "updated_at"],
    "products": ["product_id", "sku", "name", "category", "price", "active", "updated_at"],
    "customers": [
        "customer_id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "city",
        "country",
        "created_at",
        "updated_at",
    ],
    "orders": [
        "order_id",
        "customer_id",
        "store_id",
        "status",
        "order_date",
        "total",
        "updated_at",
        "placed_at",
    ],
    "order_items": ["order_id", "line_no", "product_id", "quantity", "unit_price", "updated_at"],
    "inventory": [
        "snapshot_date",
        "product_id",
        "store_id",
        "quantity_on_hand",
        "units_received",
        "updated_at",
    ],
}

FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Margaret",
    "John",
    "Katherine",
    "Dennis",
    "Hedy",
    "Linus",
    "Sophie",
    "Guido",
)
LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Hamilton",
    "McCarthy",
    "Johnson",
    "Ritchie",
    "Lamarr",
)
CITIES = (
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("London", "GB"),
    ("Amsterdam", "NL"),
    ("Madrid", "ES"),
    ("Milan", "IT"),
    ("Stockholm", "SE"),
    ("Austin", "US"),
)
CATEGORIES = ("books", "games", "garden", "kitchen", "toys", "audio", None)
STATUSES = (
    "placed",
    "paid",
    "shipped",
    "delivered",
    "delivered",
    "cancelled",
    " Shipped",
    "DELIVERED ",
)


# -- connections: one small adapter per driver, all DB-API --------------------------------
class Source:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.kind = {"postgres": "postgresql", "mariadb": "mysql"}.get(parts.scheme, parts.scheme)
        if self.kind == "sqlite":
            import sqlite3

            path = Path(unquote(parts.path[1:] if parts.path.startswith("/") else parts.path))
            path = path if path.is_absolute() else HERE / path
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con: Any = sqlite3.connect(path)
            self.mark = "?"
        elif self.kind == "postgresql":
            import psycopg

            self.con = psycopg.connect(url.replace("postgres://", "postgresql://", 1))
            self.mark = "%s"
        elif self.kind == "mysql":
            import pymysql

            self.con = pymysql.connect(
                host=parts.hostname,
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                database=parts.path.lstrip("/"),
            )
            self.mark = "%s"
        else:
            raise SystemExit(
                f"unsupported source {parts.scheme!r}: use sqlite, postgresql or mysql"
            )

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        cur = self.con.cursor()
        try:
            yield cur
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        finally:
            cur.close()

    def value(self, v: Any) -> Any:
        if self.kind == "sqlite" and isinstance(v, Decimal):
            return str(v)
        if self.kind == "sqlite" and isinstance(v, datetime | date):
            return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
        return v

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        names = COLUMNS[table]
        marks = ", ".join([self.mark] * len(names))
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
        with self.cursor() as cur:
            cur.executemany(sql, [[self.value(r[n]) for n in names] for r in rows])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            cur.execute(sql.replace("?", self.mark), [self.value(p) for p in params])
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        self.con.close()


# -- the initial data ------------------------------------------------------------------------
def create(src: Source) -> None:
    """Seeded rows whose timestamps end a minute ago: the history before the first load.

    Timestamps are relative to the clock, as on a live system: a source whose
    commit-safe bound is its clock (PostgreSQL) saves "now" as the watermark.
    """
    rng = random.Random(7)
    end = datetime.now().replace(microsecond=0) - timedelta(minutes=1)
    base = end - timedelta(days=20)
    with src.cursor() as cur:
        for table in reversed(TABLES):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        for table in TABLES:
            cur.execute(f"CREATE TABLE {table} ({DDL[table].format(**_TYPES[src.kind])})")
    src.insert("stores", [_store(i, rng, base) for i in range(1, 13)])
    products = [_product(i, rng, base) for i in range(1, 61)]
    src.insert("products", products)
    src.insert("customers", _customers(1, 300, rng, base, end))
    orders, items = _orders(1, 2000, 300, products, rng, end)
    src.insert("orders", orders)
    src.insert("order_items", items)
    src.insert("inventory", _inventory(end.date() - timedelta(days=1), products, rng, end))


def _inventory(
    day: date, products: list[dict[str, Any]], rng: random.Random, at: datetime
) -> list[dict[str, Any]]:
    """One day's stock count: every product in every one of the 12 stores."""
    return [
        {
            "snapshot_date": day,
            "product_id": p["product_id"],
            "store_id": store,
            "quantity_on_hand": rng.randint(0, 40),
            "units_received": rng.choice((0, 0, 5, 10)),
            "updated_at": at,
        }
        for p in products
        for store in range(1, 13)
    ]


def _store(i: int, rng: random.Random, base: datetime) -> dict[str, Any]:
    city, country = CITIES[i % len(CITIES)]
    opened = date(2015, 1, 1) + timedelta(days=rng.randint(0, 3000))
    return {
        "store_id": i,
        "name": f"{city} #{i}",
        "city": city,
        "country": country,
        "opened_on": opened,
        "updated_at": base - timedelta(days=30 - i),
    }


def _product(i: int, rng: random.Random, base: datetime) -> dict[str, Any]:
    category = CATEGORIES[i % len(CATEGORIES)]
    price = Decimal(rng.randint(199, 19999)) / 100
    return {
        "product_id": i,
        "sku": f"SKU-{i:05d}",
        "name": f"{(category or 'misc').title()} item {i}",
        "category": category,
        "price": price,
        "active": i != 60,
        "updated_at": base - timedelta(days=20, minutes=i),
    }


def _customers(
    first: int, last: int, rng: random.Random, base: datetime, end: datetime
) -> list[dict[str, Any]]:
    rows = []
    for i in range(first, last + 1):
        fn, ln = rng.choice(FIRST), rng.choice(LAST)
        city, country = rng.choice(CITIES)
        email: str | None = f"{fn}.{ln}{i}@example.com".lower()
        if i % 37 == 0:  # the same person registered twice, e-mail in different case
            email = f"{FIRST[i % 5]}.{LAST[i % 5]}@Example.com"
        elif i % 37 == 1 and i > 1:
            email = f"{FIRST[(i - 1) % 5]}.{LAST[(i - 1) % 5]}@example.com".lower()
        elif i % 41 == 0:
            email = rng.choice(
                (
                    f"{fn}.{ln}@",
                    f"{fn}.{ln}.example.com",
                    f" {fn}@example.com ",
                    f"{fn}@@example.com",
                )
            )
        elif i % 97 == 0:
            email = None
        created = min(base - timedelta(days=30) + timedelta(minutes=97 * i), end)
        rows.append(
            {
                "customer_id": i,
                "email": email,
                "first_name": fn,
                "last_name": ln,
                "phone": None if i % 19 == 0 else f"+49 30 {rng.randint(1000000, 9999999)}",
                "city": None if i % 53 == 0 else city,
                "country": country,
                "created_at": created,
                "updated_at": min(created + timedelta(hours=rng.randint(0, 240)), end),
            }
        )
    return rows


def _orders(
    first: int,
    last: int,
    customers: int,
    products: list[dict[str, Any]],
    rng: random.Random,
    end: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders every 11 minutes until an hour before ``end``; the newest updated at ``end``."""
    orders, items = [], []
    for i in range(first, last + 1):
        placed = end - timedelta(hours=1, minutes=11 * (last - i))
        lines = []
        for line in range(1, rng.randint(1, 4) + 1):
            product = rng.choice(products[:59])
            lines.append(
                {
                    "order_id": i,
                    "line_no": line,
                    "product_id": product["product_id"],
                    "quantity": rng.randint(1, 5),
                    "unit_price": product["price"],
                    "updated_at": placed,
                }
            )
        items.extend(lines)
        orders.append(
            {
                "order_id": i,
                "customer_id": rng.randint(1, customers),
                "store_id": None if i % 10 == 0 else rng.randint(1, 12),
                "status": rng.choice(STATUSES),
                "order_date": placed.date(),
                "total": sum((x["unit_price"] * x["quantity"] for x in lines), Decimal("0.00")),
                "placed_at": placed,
                "updated_at": end
                if i == last
                else min(placed + timedelta(hours=rng.randint(0, 48)), end),
            }
        )
    return orders, items


# -- the changes between the full and the incremental load ----------------------------------
def change(src: Source) -> None:
    """What happens between two loads, every change stamped with the clock as it commits."""
    rng = random.Random(11)
    [(latest,)] = src.execute("SELECT max(updated_at) FROM orders")
    latest = latest if isinstance(latest, datetime) else datetime.fromisoformat(str(latest))
    now = datetime.now()
    for customer in range(5, 300, 20):  # 15 customers move
        city, country = rng.choice(CITIES)
        src.execute(
            "UPDATE customers SET city = ?, country = ?, updated_at = ? WHERE customer_id = ?",
            [city, country, now, customer],
        )
    src.insert("customers", _stamped(_customers(301, 320, rng, now - timedelta(days=1), now), now))
    src.execute(
        "UPDATE orders SET status = 'delivered', updated_at = ? WHERE order_id IN "
        f"({', '.join(str(o) for o in range(1001, 2000, 33))})",
        [now],
    )  # 31 orders
    products = [
        {"product_id": r[0], "price": Decimal(str(r[1]))}
        for r in src.execute("SELECT product_id, price FROM products ORDER BY product_id")
    ]
    orders, items = _orders(2001, 2100, 320, products, rng, now)
    src.insert("orders", _stamped(orders, now))
    src.insert("order_items", _stamped(items, now))
    src.execute(
        "UPDATE products SET price = price + 1, updated_at = ? WHERE product_id <= 5", [now]
    )
    src.insert("products", [_product(i, rng, now) | {"updated_at": now} for i in (61, 62, 63)])
    src.execute("DELETE FROM products WHERE product_id = 60")  # discontinued, never sold
    src.execute(
        "UPDATE stores SET name = ?, updated_at = ? WHERE store_id = 3", ["Paris Opera", now]
    )
    src.insert("stores", [_store(13, rng, now) | {"updated_at": now}])
    # The late update: it commits now, but carries a timestamp from 30 minutes
    # before the newest row of the last load (a long transaction, a skewed clock).
    # A plain "updated_at > watermark" would miss it; the orders pipeline's 1h
    # lookback re-reads that window, and the merge keeps the re-read idempotent.
    src.execute(
        "UPDATE orders SET status = 'refunded', updated_at = ? WHERE order_id = ?",
        [latest - timedelta(minutes=30), LATE_ORDER],
    )
    _after_the_changes(src, rng, now)


def _after_the_changes(src: Source, rng: random.Random, now: datetime) -> None:
    """The rest of day 2: customers who moved order again, and today's stock count.

    These orders are placed after the moves, so the star schema attributes them
    to the new address while the customers' earlier orders keep the old one.
    """
    later = max(datetime.now(), now + timedelta(microseconds=1))
    products = [
        {"product_id": r[0], "price": Decimal(str(r[1]))}
        for r in src.execute("SELECT product_id, price FROM products ORDER BY product_id")
    ]
    orders, items = _orders(2101, 2105, 320, products, rng, later)
    for order, customer in zip(orders, range(5, 300, 20), strict=False):
        order.update(customer_id=customer, placed_at=later, order_date=later.date())
    src.insert("orders", _stamped(orders, later))
    src.insert("order_items", _stamped(items, later))
    src.insert("inventory", _inventory(later.date(), products, rng, later))


def _stamped(rows: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    return [row | {"updated_at": at} for row in rows]


# -- comparison with the warehouse -----------------------------------------------------------
def compare(src: Source, warehouse: Path) -> int:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    failures = 0
    print(f"{'table':<12} {'source':>8} {'warehouse':>10}")
    for table in TABLES:
        [(expected,)] = src.execute(f"SELECT count(*) FROM {table}")
        row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        got = row[0] if row else None
        failures += got != expected
        print(f"{table:<12} {expected:>8} {got:>10}{'' if got == expected else '  MISMATCH'}")
    late = con.execute("SELECT status FROM orders WHERE order_id = ?", [LATE_ORDER]).fetchone()
    print(f"late update of order {LATE_ORDER}: {late[0] if late else None!r}")
    failures += not late or late[0] != "refunded"
    con.close()
    return 1 if failures else 0


def project_source_url() -> str:
    """The project's ``source`` connection as crane resolves it, so that this script and
    ``crane run`` agree on the database whichever way it was named (crane.yml, env, .env)."""
    from crane.project import Project

    return Project.load(HERE).connection_url("source")


def shown(url: str) -> str:
    """``url`` as it may be printed: password masked, this folder left out of file paths."""
    from crane.connectors.base import ConnectionURL

    return ConnectionURL.parse(url).masked.replace(f"{HERE}/", "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("create", "change", "compare"))
    parser.add_argument("--url", help="default: the project's source connection")
    parser.add_argument("--warehouse", type=Path, default=WAREHOUSE)
    args = parser.parse_args(argv)
    url = args.url or project_source_url()
    src = Source(url)
    try:
        if args.action == "create":
            print(f"source database: {shown(url)}")
            create(src)
        elif args.action == "change":
            change(src)
        else:
            return compare(src, args.warehouse)
    finally:
        src.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
