"""What each warehouse engine can do, declared as data (no ``if dialect == …`` in the DDL code).

A `WarehouseDialect` says how surrogate keys are generated, whether keys are
enforced or only informational, where column comments go, and which physical
options the engine accepts with their limits. `check_physical` validates a
table's options against that data: an option the engine cannot do, or one
past its limit, is an error naming it — never silently dropped (the failure
behind dbt-bigquery #918). Vendor references for the limits:

- BigQuery clustering: at most 4 columns
  (https://cloud.google.com/bigquery/docs/clustered-tables); partitioning by a
  DATE/TIMESTAMP/DATETIME column; PRIMARY/FOREIGN KEY must be ``NOT ENFORCED``.
- Snowflake: constraints other than NOT NULL are informational (``NOT ENFORCED`` is
  their default, so crane writes the plain syntax);
  ``CLUSTER BY`` takes columns or expressions (``TO_DATE(ordered_at)``), whose
  columns must exist; crane quotes them as it quotes every column it creates.
- Redshift: ``DISTSTYLE AUTO|EVEN|KEY|ALL``, one ``DISTKEY`` (implies KEY),
  ``COMPOUND|INTERLEAVED SORTKEY`` (interleaved: at most 8 columns);
  constraints are informational and accept no ``NOT ENFORCED`` keyword.
- PostgreSQL: enforced keys; foreign keys are not indexed automatically (so
  crane indexes them); a range-partitioned table's primary key must include
  the partition column.

>>> get("bigquery").constraints
'not_enforced'
>>> get("bigqeury")
Traceback (most recent call last):
...
crane.errors.UnknownNameError: unknown warehouse dialect 'bigqeury'; known: ...
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from crane.errors import UnknownNameError

if TYPE_CHECKING:
    from sqlglot import exp

OptionKind = Literal[
    "columns", "column", "choice", "flag", "column_lists", "partitions", "int_range"
]
DATE_TYPES = ("DATE", "TIMESTAMP", "DATETIME", "TIMESTAMPTZ", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ")
INT_TYPES = ("INT", "INTEGER", "BIGINT", "SMALLINT", "INT64")
NUMERIC_TYPES = (
    "INT",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "TINYINT",
    "INT64",
    "HUGEINT",
    "DECIMAL",
    "NUMERIC",
    "NUMBER",
    "REAL",
    "FLOAT",
    "FLOAT4",
    "FLOAT8",
    "FLOAT64",
    "DOUBLE",
    "DOUBLE PRECISION",
    "MONEY",
)


# https://cloud.google.com/bigquery/quotas#partitioned_tables
BQ_MAX_PARTITIONS = 10_000
# BigQuery clusters by "top-level, non-repeated, simple-type" columns: never FLOAT64,
# JSON, STRUCT or ARRAY (https://cloud.google.com/bigquery/docs/clustered-tables)
BQ_CLUSTER_TYPES = (
    *INT_TYPES,
    "TINYINT",
    "DECIMAL",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOLEAN",
    "BOOL",
    "TEXT",
    "VARCHAR",
    "CHAR",
    "STRING",
    "DATE",
    "DATETIME",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "TIMESTAMP_NTZ",
    "GEOGRAPHY",
)


@dataclass(frozen=True)
class OptionRule:
    """One physical option an engine accepts, and its limits."""

    kind: OptionKind
    help: str
    max_columns: int | None = None
    choices: tuple[str, ...] = ()
    column_types: tuple[str, ...] = ()  # allowed base types of the column(s), if limited
    # can a live table change this option in place (ALTER), or only by being rebuilt?
    in_place: bool = False
    # may an entry be an expression over the columns (Snowflake CLUSTER BY)?
    expressions: bool = False


@dataclass(frozen=True)
class WarehouseDialect:
    """One engine's differences, as data the DDL builder reads."""

    name: str
    sqlglot: str
    # surrogate key strategies the engine generates itself; "identity" may be
    # emulated by a sequence where the engine has sequences but no identity columns
    key_strategies: frozenset[str]
    identity_by_sequence: bool = False
    sequences: bool = False
    # how a column default draws from a sequence: nextval('s') or s.NEXTVAL
    sequence_default: Literal["nextval", "dot_nextval"] = "nextval"
    # enforced: checked by the engine; not_enforced: declared with NOT ENFORCED;
    # informational: plain syntax, never checked (Redshift)
    constraints: Literal["enforced", "not_enforced", "informational"] = "enforced"
    # statement: COMMENT ON …; inline: COMMENT '…' in the column; options: OPTIONS(description=…)
    comments: Literal["statement", "inline", "options"] = "statement"
    options: dict[str, OptionRule] = field(default_factory=dict)
    index_foreign_keys: bool = False  # create an index per foreign key by default
    max_identifier: int = 255
    # identity syntax written verbatim where sqlglot cannot express it (see ddl._key_default)
    identity_text: str | None = None
    # can a table that foreign keys point at drop or retype a column? (DuckDB: no)
    alter_referenced: bool = True
    unique_constraints: bool = True  # BigQuery has PRIMARY and FOREIGN KEY only
    drop_not_null: bool = True  # ALTER COLUMN … DROP NOT NULL (Redshift: rebuild only)
    add_foreign_keys: bool = True  # ALTER TABLE … ADD FOREIGN KEY (DuckDB: not yet)
    partition_in_primary_key: bool = False  # a partitioned table's key must hold its column
    # type widenings (crane.warehouse.retype) altered in place, keeping every row
    widen_in_place: frozenset[str] = frozenset()
    retype_keys: bool = True  # can a key (PRIMARY, UNIQUE, FOREIGN) column change type?
    # does the catalog tell VARCHAR(n) from unbounded text? (DuckDB keeps no length;
    # Snowflake and Redshift give unbounded text a length of their own)
    text_lengths: bool = False


_DATE_COL = "column"
DIALECTS: dict[str, WarehouseDialect] = {
    "duckdb": WarehouseDialect(
        name="duckdb",
        sqlglot="duckdb",
        key_strategies=frozenset({"identity", "sequence", "hash", "natural"}),
        identity_by_sequence=True,  # DuckDB has sequences but no IDENTITY columns
        sequences=True,
        alter_referenced=False,
        add_foreign_keys=False,
        # SET DATA TYPE; "Cannot change the type of a column that has a … constraint"
        widen_in_place=frozenset({"text", "integer", "precision", "scale"}),
        retype_keys=False,
    ),
    "postgres": WarehouseDialect(
        name="postgres",
        sqlglot="postgres",
        key_strategies=frozenset({"identity", "sequence", "hash", "natural"}),
        sequences=True,
        index_foreign_keys=True,
        max_identifier=63,
        partition_in_primary_key=True,
        widen_in_place=frozenset({"text", "integer", "precision", "scale"}),
        text_lengths=True,
        options={
            "indexes": OptionRule(
                "column_lists", "extra B-tree indexes, each a list of columns", in_place=True
            ),
            "index_foreign_keys": OptionRule(
                "flag", "index every foreign key (default true)", in_place=True
            ),
            "partition_by": OptionRule(
                "column",
                "range-partition by this date (or yyyymmdd integer) column",
                column_types=DATE_TYPES + INT_TYPES,
            ),
            "partitions": OptionRule(
                "partitions", "{from, to, every: year|month}: the ranges to create", in_place=True
            ),
        },
    ),
    "snowflake": WarehouseDialect(
        name="snowflake",
        sqlglot="snowflake",
        key_strategies=frozenset({"identity", "sequence", "hash", "natural"}),
        sequences=True,
        sequence_default="dot_nextval",
        # Snowflake's PRIMARY/UNIQUE/FOREIGN KEY are NOT ENFORCED by default (only NOT NULL
        # is checked): the plain syntax says the same, and Snowflake emulators accept it
        constraints="informational",
        comments="inline",
        # SET DATA TYPE may lengthen text and add precision, never change a scale
        widen_in_place=frozenset({"text", "integer", "precision"}),
        options={
            "cluster_by": OptionRule(
                "columns", "clustering key columns or expressions", in_place=True, expressions=True
            )
        },
    ),
    "bigquery": WarehouseDialect(
        name="bigquery",
        sqlglot="bigquery",
        key_strategies=frozenset({"hash", "natural"}),  # no IDENTITY, no sequences
        constraints="not_enforced",
        comments="options",
        unique_constraints=False,
        max_identifier=300,
        widen_in_place=frozenset({"text", "integer", "precision"}),  # SET DATA TYPE
        options={
            "partition_by": OptionRule(
                "column",
                "partition by this DATE/TIMESTAMP column (integer: with partition_range)",
                column_types=DATE_TYPES + INT_TYPES,
            ),
            "partition_range": OptionRule(
                "int_range", "[start, end, interval] of an integer partition (RANGE_BUCKET)"
            ),
            "cluster_by": OptionRule(
                "columns", "clustering columns", max_columns=4, column_types=BQ_CLUSTER_TYPES
            ),
            "surrogate_key": OptionRule(
                "choice", "key strategy used on BigQuery instead of the model's", choices=("hash",)
            ),
        },
    ),
    "redshift": WarehouseDialect(
        name="redshift",
        sqlglot="redshift",
        key_strategies=frozenset({"identity", "hash", "natural"}),  # IDENTITY, no sequences
        # BY DEFAULT lets loaders insert explicit keys (a plain IDENTITY refuses them);
        # sqlglot renders both as IDENTITY(1, 1), so the text is given here
        identity_text="GENERATED BY DEFAULT AS IDENTITY(1, 1)",
        constraints="informational",
        drop_not_null=False,
        max_identifier=127,
        # ALTER COLUMN … TYPE lengthens a VARCHAR only, and never a key column
        widen_in_place=frozenset({"text"}),
        retype_keys=False,
        options={
            "diststyle": OptionRule(
                "choice", "row distribution", choices=("auto", "even", "key", "all"), in_place=True
            ),
            "distkey": OptionRule(
                "column", "distribution key column (implies DISTSTYLE KEY)", in_place=True
            ),
            "sortkey": OptionRule("columns", "sort key columns", in_place=True),
            "sortkey_style": OptionRule(
                "choice", "sort key kind", choices=("compound", "interleaved")
            ),
            "surrogate_key": OptionRule(
                "choice", "key strategy used on Redshift instead of the model's", choices=("hash",)
            ),
        },
    ),
}
ALIASES = {"postgresql": "postgres"}
INTERLEAVED_MAX = 8


def get(name: str) -> WarehouseDialect:
    """The dialect called ``name``; an unknown name lists the known ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key in DIALECTS:
        return DIALECTS[key]
    close = difflib.get_close_matches(key, list(DIALECTS), n=3)
    raise UnknownNameError(
        f"unknown warehouse dialect {name!r}; known: {', '.join(DIALECTS)}",
        hint=f"did you mean {', '.join(repr(c) for c in close)}?" if close else None,
    )


def names() -> list[str]:
    return list(DIALECTS)


def base_type(type_text: str) -> str:
    """``DECIMAL(12, 2)`` → ``DECIMAL``; ``timestamp with time zone`` → ``TIMESTAMPTZ``."""
    text = type_text.strip().upper().split("(")[0].strip()
    return {
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
        "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    }.get(text, text)


def is_numeric(type_text: str) -> bool:
    """By sqlglot's reading of the type, so INT8, INT4 and BIGNUMERIC count as numbers."""
    from sqlglot import exp

    try:
        return column_type(type_text).is_type(*exp.DataType.NUMERIC_TYPES)
    except ValueError:
        return base_type(type_text) in NUMERIC_TYPES


# Spellings sqlglot's dialect-free reader takes from ClickHouse (``Int8``: one byte) that
# mean the 8-byte integer on every engine crane renders for (PostgreSQL, DuckDB, Redshift)
TYPE_ALIASES = {"INT8": "BIGINT"}
COMMON_TYPES = (
    *INT_TYPES,
    "DECIMAL",
    "NUMERIC",
    "DOUBLE",
    "REAL",
    "FLOAT",
    "BOOLEAN",
    "TEXT",
    "VARCHAR",
    "CHAR",
    *DATE_TYPES,
    "TIME",
    "UUID",
    "JSON",
    "BLOB",
)


def column_type(type_text: str) -> exp.DataType:
    """A model's declared type as a sqlglot type, rendered later for each engine.

    Raises `ValueError` naming the type when it is no SQL type (``INTEGR``,
    ``VARCHAR(10``), so `crane model validate` reports it before any DDL runs.

    >>> column_type("int8").sql("duckdb"), column_type("DECIMAL(10,2)").sql("postgres")
    ('BIGINT', 'DECIMAL(10, 2)')
    """
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = type_text.strip()
    base = text.split("(")[0].strip().upper()
    if base in TYPE_ALIASES:
        text = TYPE_ALIASES[base] + text[len(base) :]
    try:
        return exp.DataType.build(text)
    except SqlglotError:
        close = difflib.get_close_matches(base, COMMON_TYPES, n=2)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(f"type {type_text!r} is not a SQL type crane can render{hint}") from None


def check_physical(
    engine: str, options: dict[str, Any], columns: dict[str, str], primary_key: list[str]
) -> list[tuple[str, str]]:
    """Problems with one table's options for ``engine``, as (option path, reason) pairs.

    ``columns`` maps the table's column names to their declared types.
    """
    try:
        dialect = get(engine)
    except UnknownNameError as error:
        return [("", error.detail + (f" ({error.hint})" if error.hint else ""))]
    problems: list[tuple[str, str]] = []
    for name, value in options.items():
        rule = dialect.options.get(name)
        if rule is None:
            allowed = ", ".join(dialect.options) or "none"
            problems.append(
                (name, f"{engine} cannot do physical option {name!r} (it accepts: {allowed})")
            )
            continue
        problems += [(name, r) for r in _check_value(engine, name, rule, value, columns)]
    problems += _check_combination(dialect, options, columns, primary_key)
    return problems


def _check_value(
    engine: str, name: str, rule: OptionRule, value: Any, columns: dict[str, str]
) -> list[str]:
    if rule.kind == "flag":
        return [] if isinstance(value, bool) else [f"{name} must be true or false"]
    if rule.kind == "choice":
        if str(value).lower() not in rule.choices:
            return [f"{name} must be one of {', '.join(rule.choices)}, not {value!r}"]
        return []
    if rule.kind == "partitions":
        return _check_partitions(name, value)
    if rule.kind == "int_range":
        # a YAML true is an int to Python, and was rendered as GENERATE_ARRAY(0, 100, True)
        ok = isinstance(value, list) and len(value) == 3 and all(_is_int(v) for v in value)
        if not ok:
            return [f"{name} must be [start, end, interval] integers"]
        start, end, step = value
        if step <= 0 or end <= start:
            return [f"{name} needs start < end and a positive interval, not {value}"]
        # the end is exclusive and a last, shorter range still counts: round up
        count = -((start - end) // step)
        if count > BQ_MAX_PARTITIONS:
            return [
                f"{name} makes {count} partitions; {engine} allows "
                f"{BQ_MAX_PARTITIONS} (a yyyymmdd key with interval 1 counts every number)"
            ]
        return []
    if rule.kind == "column_lists":
        if not isinstance(value, list):
            return [f"{name} must be a list of column lists"]
        lists = [[v] if isinstance(v, str) else v for v in value]
        problems = [r for cols in lists for r in _check_columns(engine, name, rule, cols, columns)]
        seen = [tuple(cols) for cols in lists if isinstance(cols, list)]
        twice = [cols for cols in dict.fromkeys(seen) if seen.count(cols) > 1]
        # each became one more CREATE INDEX of the same name, skipped by IF NOT EXISTS
        return problems + [f"{name} lists ({', '.join(map(str, c))}) twice" for c in twice]
    if rule.kind == "column" and not isinstance(value, str):
        return [f"{name} must be one column name"]
    if rule.kind == "columns" and isinstance(value, str):
        # the DDL iterates the list: a bare 'order_day' clustered by o, r, d, e, r, …
        return [f"{name} must be a list of columns: write [{value}], not {value}"]
    cols = [value] if rule.kind == "column" else value
    return _check_columns(engine, name, rule, cols, columns)


def _check_columns(
    engine: str, name: str, rule: OptionRule, cols: Any, columns: dict[str, str]
) -> list[str]:
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        return [f"{name} must name one or more columns"]
    terms = [c for c in cols if c not in columns and rule.expressions]
    problems = [_unknown_column(name, c) for c in cols if c not in columns and c not in terms]
    problems += [p for c in terms for p in _check_expression(engine, name, c, columns)]
    repeated = [c for c in dict.fromkeys(cols) if cols.count(c) > 1]
    problems += [f"{name} names column {c!r} twice" for c in repeated]
    if rule.max_columns is not None and len(cols) > rule.max_columns:
        problems.append(
            f"{engine} allows at most {rule.max_columns} {name} columns, got {len(cols)}"
        )
    for c in cols:
        if c in columns and rule.column_types and base_type(columns[c]) not in rule.column_types:
            problems.append(
                f"{name} column {c!r} is {columns[c]}; {engine} needs one of "
                f"{', '.join(dict.fromkeys(rule.column_types))}"
            )
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_column(name: str, column: str) -> str:
    """An unknown column, or an expression where only column names are rendered."""
    if any(mark in column for mark in "()+-*/|' "):
        return (
            f"{name} takes column names; {column!r} is an expression, which crane "
            "does not render (add a column holding it and name that column)"
        )
    return f"{name} names unknown column {column!r}"


def _check_expression(engine: str, name: str, text: str, columns: dict[str, str]) -> list[str]:
    """An expression entry: it parses for ``engine`` and uses only the table's columns."""
    from sqlglot import exp

    try:
        node = _parse_term(text, engine)
    except ValueError:
        return [f"{name} entry {text!r} is neither a column nor an expression {engine} reads"]
    used = {c.name for c in node.find_all(exp.Column)}
    if not used:
        return [f"{name} entry {text!r} uses no column"]
    return [
        f"{name} entry {text!r} names unknown column {c!r}" for c in sorted(used - set(columns))
    ]


def _parse_term(text: str, engine: str) -> exp.Expr:
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse_one(text, read=get(engine).sqlglot)
    except SqlglotError as error:
        raise ValueError(str(error)) from None


def cluster_terms(values: list[str], engine: str, columns: Collection[str]) -> list[exp.Expr]:
    """``cluster_by`` entries as expressions: a column quoted as crane creates it, an
    expression (validated by `check_physical`) with each of its columns quoted the same
    way (Snowflake folds an unquoted ``ordered_at`` to ORDERED_AT, no column of crane's).
    """
    from sqlglot import exp

    from crane.sql.build import col

    terms: list[exp.Expr] = []
    for value in values:
        if value in columns or not get(engine).options["cluster_by"].expressions:
            terms.append(col(value))
            continue
        node = _parse_term(value, engine)
        for column in node.find_all(exp.Column):
            column.set("this", exp.to_identifier(column.name, quoted=True))
        terms.append(node)
    return terms


def _check_partitions(name: str, value: Any) -> list[str]:
    if not isinstance(value, dict) or not {"from", "to"} <= set(value):
        return [f"{name} needs 'from' and 'to' dates (and 'every': year|month)"]
    if str(value.get("every", "year")) not in ("year", "month"):
        return [f"{name}.every must be year or month"]
    extra = set(value) - {"from", "to", "every"}
    if extra:
        return [f"{name} has unknown key {sorted(extra)[0]!r}"]
    days = {}
    for bound in ("from", "to"):
        given = value[bound]
        try:
            days[bound] = given if isinstance(given, date) else date.fromisoformat(str(given))
        except ValueError:
            return [f"{name}.{bound} must be a date (YYYY-MM-DD), not {given!r}"]
    if days["to"] <= days["from"]:
        return [f"{name}.to ({days['to']}) must come after {name}.from ({days['from']})"]
    return []


def _check_combination(
    dialect: WarehouseDialect,
    options: dict[str, Any],
    columns: dict[str, str],
    primary_key: list[str],
) -> list[tuple[str, str]]:
    """Rules between options of one engine."""
    engine = dialect.name
    problems: list[tuple[str, str]] = []
    style = str(options.get("diststyle", "")).lower()
    if "distkey" in options and style and style != "key":
        problems.append(("distkey", f"distkey needs diststyle key, not {style!r}"))
    if style == "key" and "distkey" not in options:
        problems.append(("diststyle", "diststyle key needs a distkey column"))
    sortkey = options.get("sortkey") or []
    if "sortkey_style" in options and "sortkey" not in options:
        # the DDL writes the style only in front of SORTKEY(…): it was dropped silently
        problems.append(("sortkey_style", "sortkey_style needs sortkey columns"))
    interleaved = str(options.get("sortkey_style", "")).lower() == "interleaved"
    if interleaved:
        # sqlglot writes SortKeyProperty without INTERLEAVED (and cannot parse it), so the
        # DDL said plain SORTKEY(…), which Redshift takes as COMPOUND: refused, not dropped
        problems.append(
            (
                "sortkey_style",
                "crane does not render INTERLEAVED sort keys yet (the DDL came out as a "
                "compound SORTKEY); use compound or alter the table after apply",
            )
        )
    if interleaved and isinstance(sortkey, list) and len(sortkey) > INTERLEAVED_MAX:
        problems.append(
            ("sortkey", f"{engine} interleaved sort keys allow at most {INTERLEAVED_MAX} columns")
        )
    part = options.get("partition_by")
    if not isinstance(part, str):  # not one column name: reported as such by its own check
        part = None
    if dialect.partition_in_primary_key and part and primary_key and part not in primary_key:
        problems.append(
            (
                "partition_by",
                f"postgres needs the partition column {part!r} in the primary key "
                f"({', '.join(primary_key)}): add it to the grain",
            )
        )
    if "partitions" in options and not part:
        problems.append(("partitions", "partitions need partition_by"))
    if "partition_range" in options and not part:
        problems.append(("partition_range", "partition_range needs partition_by"))
    integer = part in columns and base_type(columns[part]) in INT_TYPES
    if "partition_range" in options and part in columns and not integer:
        # RANGE_BUCKET takes an integer: BigQuery refused the table at creation
        problems.append(
            (
                "partition_range",
                f"partition_range buckets an integer column; {part!r} is {columns[part]}",
            )
        )
    if integer and "partition_range" in dialect.options and "partition_range" not in options:
        problems.append(
            (
                "partition_by",
                f"{engine} partitions an integer column {part!r} by range: "
                "add partition_range: [start, end, interval]",
            )
        )
    return problems
