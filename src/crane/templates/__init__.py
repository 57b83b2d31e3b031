"""What ``crane init`` writes: a project that runs as it is, on a sample SQLite source.

The files under ``project/`` are copied (``env.example`` → ``.env.example``,
``gitignore`` → ``.gitignore``: dotfiles are easy to lose in packaging), and a
small operational database is created at ``data/source.sqlite`` so that
``crane init x && cd x && crane run --all`` works with no server at all.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from crane.errors import ConfigError

SAMPLE_SOURCE = Path("data/source.sqlite")
_RENAMES = {"env.example": ".env.example", "gitignore": ".gitignore"}
_FILES = (
    "crane.yml",
    "pipelines/customers.yml",
    "pipelines/orders_etl.py",
    "checks/quality.yml",
    "env.example",
    "gitignore",
)


def scaffold(directory: Path, *, force: bool = False) -> list[str]:
    """Write a new project into ``directory``; returns the paths written (relative)."""
    directory = Path(directory)
    if (directory / "crane.yml").exists() and not force:
        raise ConfigError(
            f"{directory / 'crane.yml'} already exists",
            hint="pass --force to overwrite the scaffold files",
        )
    root = resources.files("crane.templates").joinpath("project")
    written = []
    name = directory.resolve().name or "crane-project"
    for relative in _FILES:
        text = root.joinpath(relative).read_text(encoding="utf-8")
        target = directory / _RENAMES.get(relative, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("{{name}}", name), encoding="utf-8")
        written.append(str(target.relative_to(directory)))
    create_sample_source(directory / SAMPLE_SOURCE, replace=force)
    written.append(str(SAMPLE_SOURCE))
    return written


def create_sample_source(
    path: Path, *, customers: int = 200, orders: int = 1000, replace: bool = False
) -> None:
    """A small shop database: customers and orders with ``updated_at`` for incremental loads.

    Deterministic (seeded), so a scaffolded project gives the same numbers everywhere.
    Statuses carry stray case and spaces for the transform step to clean.
    """
    if path.exists():
        if not replace:
            return
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    start = datetime(2026, 1, 1, 8, 0, 0)
    with sqlite3.connect(path) as con:
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [_customer(i, rng, start) for i in range(1, customers + 1)],
        )
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
            [_order(i, rng, start, customers) for i in range(1, orders + 1)],
        )
    con.close()


_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200),
    country CHAR(2),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status VARCHAR(20) NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
"""
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "SE")
_STATUSES = ("placed", "shipped", "delivered", " Shipped", "DELIVERED ", "cancelled")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _customer(i: int, rng: random.Random, start: datetime) -> tuple[object, ...]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    created = start + timedelta(minutes=7 * i)
    updated = created + timedelta(hours=rng.randint(0, 48))
    email = f"{first}.{last}{i}@example.com".lower()
    return (i, f"{first} {last}", email, rng.choice(_COUNTRIES), _stamp(created), _stamp(updated))


def _order(i: int, rng: random.Random, start: datetime, customers: int) -> tuple[object, ...]:
    created = start + timedelta(minutes=3 * i)
    updated = created + timedelta(hours=rng.randint(0, 72))
    return (
        i,
        rng.randint(1, customers),
        rng.choice(_STATUSES),
        rng.randint(500, 50_000),
        _stamp(created),
        _stamp(updated),
    )
