"""Profile a table inside its engine: one aggregate scan, plus one for top values and histograms.

Profilers that pull rows into Python run out of memory on real tables
(LESSONS.md, ydata-profiling #261/#743). Here every statistic is an aggregate
expression built with sqlglot (`crane.quality.profile_sql`) and evaluated by the
engine that holds the data:

* scan 1 — per column: count, nulls, distinct, min/max, mean/stddev, quantiles,
  lengths, zeros/negatives, a boolean's true/false counts, pattern shares
  ("email-like 99.8 %"), top-value candidates; per table: rows (and, where
  distincts are exact, duplicate rows).
* scan 2 — top values: every value of low-cardinality columns (at most
  ``EVERY_VALUE_UP_TO`` distincts, which makes their distinct counts exact), exact
  counts of the candidates elsewhere; equi-width histograms whose bins come from
  scan 1's min/max; exact distincts of integer-like columns by bitmap; key proof.

Tables of 1M rows or more on DuckDB take shortcuts that keep the profile under
``SUMMARIZE``'s time (bench/bench_profile.py):

* distincts are HyperLogLog estimates (as in ``SUMMARIZE``, within a few percent)
  unless made exact cheaply: all values counted (low cardinality), or a bitmap over
  the [min, max] span of integers, decimals (shifted by their scale) and dates
  (``bitstring_agg``: 10x cheaper than COUNT(DISTINCT)). ``distinct_exact`` says which.
* patterns, quantiles and top-value *candidates* come from a table sample of 1/16 of
  the rows (``TABLESAMPLE SYSTEM``: whole vectors, so it reads ~1/16 of the table and is
  not a third scan); top-value *counts* stay exact (scan 2).
* a near-unique column is proven a key by its bitmap; only when none has one is
  the most key-like proven by COUNT(DISTINCT); the unproven stay ``likely_keys``.
* duplicate rows are free when a key is proven; one more query (a row-hash
  distinct) runs only when the would-be key turns out to repeat.

``TableProfile.scans`` counts the queries that read the whole table.

Engine differences (approximate functions, quantile syntax, how top values are
found, bitmaps) are *data* in `ProfileDialect`, not branches in the profiler. The
checked database is opened read-only (`profile_url`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crane.connectors.base import TableRef, connect
from crane.errors import CraneError
from crane.quality.profile_sql import (
    DIALECTS,
    PATTERNS,
    QUANTILES,
    Bins,
    IntegerImage,
    Plan,
    ProfileDialect,
    Scan2,
    distinct_rows,
    grouping_sets,
    literal,
    sample_pass,
    scan1,
    scan2_duckdb,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from crane.connectors.base import Connector

__all__ = ["PATTERNS", "QUANTILES", "ColumnProfile", "TableProfile", "profile_table", "profile_url"]


class ProfileError(CraneError):
    """A profile could not be computed (missing table, engine error)."""


# -- results -------------------------------------------------------------------------------
@dataclass
class Bin:
    """One equi-width histogram bin ``[lower, upper)`` (the last bin is closed)."""

    lower: float
    upper: float
    count: int


@dataclass
class ColumnProfile:
    """Everything known about one column after profiling."""

    name: str
    type: str
    kind: str  # numeric | text | temporal | boolean | other
    count: int = 0  # non-null values
    nulls: int = 0
    null_pct: float = 0.0
    distinct: int | None = None
    distinct_exact: bool = False
    min: Any = None
    max: Any = None
    mean: float | None = None
    stddev: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    length_min: int | None = None
    length_avg: float | None = None
    length_max: int | None = None
    zeros: int | None = None
    negatives: int | None = None
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    histogram: list[Bin] = field(default_factory=list)
    patterns: dict[str, float] = field(default_factory=dict)  # name -> share of non-null

    @property
    def unique(self) -> bool:
        """Every row has a value and no value repeats (exactly known)."""
        return self.nulls == 0 and self.distinct_exact and self.distinct == self.count

    def pattern(self, threshold: float = 0.95) -> tuple[str, float] | None:
        """The dominant inferred pattern, e.g. ``("email", 0.998)``, if one covers ``threshold``."""
        best = max(self.patterns.items(), key=lambda kv: kv[1], default=None)
        return best if best and best[1] >= threshold else None


@dataclass
class TableProfile:
    """A table's profile: its columns, row count, duplicate rows and candidate keys."""

    table: str
    engine: str
    rows: int
    columns: list[ColumnProfile]
    duplicate_rows: int | None
    candidate_keys: list[str]  # proven: no NULLs, distinct = rows (exact)
    scans: int
    seconds: float
    likely_keys: list[str] = field(default_factory=list)  # big tables: near-unique, unproven

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: values the engine returned (dates, decimals) become strings."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _kind(dtype: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    if pa.types.is_temporal(dtype) and not pa.types.is_duration(dtype):
        return "temporal"
    return "other"


def _integer_image(dtype: pa.DataType) -> IntegerImage | None:
    import pyarrow as pa

    if pa.types.is_integer(dtype):
        return IntegerImage(0)
    if pa.types.is_decimal(dtype) and dtype.precision <= 18:  # shifted, it fits a BIGINT
        return IntegerImage(dtype.scale)
    if pa.types.is_date(dtype):
        return IntegerImage(None)
    return None


def _apply_scan1(
    cols: list[ColumnProfile], stats: dict[tuple[str, str], Any], exact: bool, top_k: int
) -> int:
    rows = int(stats[("", "rows")])
    for c in cols:
        get = lambda stat, c=c: stats.get((c.name, stat))  # noqa: E731
        c.count = int(get("count") or 0)
        c.nulls = rows - c.count
        c.null_pct = round(100.0 * c.nulls / rows, 4) if rows else 0.0
        if (distinct := get("distinct")) is not None:
            c.distinct, c.distinct_exact = min(int(distinct), c.count), exact
        c.min, c.max = get("min"), get("max")
        c.mean, c.stddev = get("mean"), get("stddev")
        c.length_min, c.length_max = get("length_min"), get("length_max")
        c.length_avg = get("length_avg")
        c.zeros, c.negatives = get("zeros"), get("negatives")
        if c.kind == "boolean" and c.count:
            trues = int(get("trues") or 0)
            counts = {v: n for v, n in ((True, trues), (False, c.count - trues)) if n}
            c.top_values = _top(counts, top_k)
            c.distinct, c.distinct_exact = len(counts), True
    return rows


def _apply_sketches(cols: list[ColumnProfile], stats: dict[tuple[str, str], Any]) -> None:
    """Quantiles and pattern shares (from scan 1, or from the sample pass on big tables)."""
    for c in cols:
        if qs := stats.get((c.name, "quantiles")):
            c.quantiles = {f"p{round(q * 100)}": v for q, v in zip(QUANTILES, qs, strict=True)}
        if c.kind == "text" and c.count:
            base = int(stats.get((c.name, "pattern_base")) or 0) or 1
            shares = {n: int(stats.get((c.name, f"pattern:{n}")) or 0) / base for n in PATTERNS}
            c.patterns = {name: round(v, 4) for name, v in shares.items() if v}


def _bins_for(c: ColumnProfile, bins: int, span: tuple[float, float] | None) -> Bins | None:
    if span is None or c.kind not in ("numeric", "temporal") or not c.count:
        return None
    lower, upper = span
    if upper <= lower:
        return Bins(c.name, lower, 1.0, 1)
    count = min(bins, max(1, c.distinct or bins))
    return Bins(c.name, lower, (upper - lower) / count, count)


def _spans(
    con: Connector, cols: list[ColumnProfile], d: ProfileDialect
) -> dict[str, tuple[float, float]]:
    """Min/max of each temporal column's epoch (numeric spans come from scan 1's min/max)."""
    spans = {
        c.name: (float(c.min), float(c.max))
        for c in cols
        if c.kind == "numeric" and c.min is not None
    }
    temporal = [c for c in cols if c.kind == "temporal" and c.min is not None]
    if temporal:
        # epoch of the min/max *values* (no table scan): SELECT epoch(<min literal>)
        exprs: list[Any] = []
        for c in temporal:
            exprs += [d.epoch(literal(c.min)), d.epoch(literal(c.max))]
        row = con.fetch(exp.select(*exprs))[0]
        for i, c in enumerate(temporal):
            spans[c.name] = (float(row[2 * i]), float(row[2 * i + 1]))
    return spans


# -- orchestration -------------------------------------------------------------------------
EVERY_VALUE_UP_TO = 1000  # columns with at most this many distincts: count every value
BITMAP_MAX_BITS = 1 << 27  # 16 MB per thread: larger spans fall back to the estimate


class _Table:
    """The profiled table: runs its aggregate queries and counts how often it was read."""

    def __init__(self, con: Connector, ref: TableRef) -> None:
        self.con, self.ref, self.target, self.reads = con, ref, ref.expression(), 0

    def one_row(self, plan: Plan, sample: exp.TableSample | None = None) -> dict:
        partial = sample is not None and sample.args["method"].name.upper() == "SYSTEM"
        return plan.read(self.fetch(plan.select(self.target, sample), full=not partial))

    def fetch(self, query: exp.Select, *, full: bool = True) -> tuple:
        self.reads += full  # a table sample reads part of the table: not a scan
        try:
            rows = self.con.fetch(query)
        except CraneError:
            raise
        except Exception as error:
            raise ProfileError(f"profile query failed: {error}", table=str(self.ref)) from error
        return rows[0]


def profile_table(
    con: Connector,
    table: str | TableRef,
    *,
    exact_distinct: bool = False,
    top_k: int = 10,
    bins: int = 20,
) -> TableProfile:
    """Profile ``table`` through ``con`` in two full scans (see the module docstring).

    ``exact_distinct`` trades speed for exact distinct counts of every column where
    the engine has an approximate function (DuckDB's HyperLogLog: measured 4-7 % low
    on 2M unique values).
    """
    started = time.perf_counter()
    ref = TableRef.parse(table) if isinstance(table, str) else table
    d = DIALECTS.get(con.dialect)
    if d is None:
        raise ProfileError(f"profiling is not supported on {con.dialect}", table=str(ref))
    schema = con.table_schema(ref)
    if schema is None:
        raise ProfileError("table not found", table=str(ref), hint="check the name and schema")
    cols = [ColumnProfile(f.name, str(f.type), _kind(f.type)) for f in schema]
    images = {f.name: image for f in schema if (image := _integer_image(f.type))}
    t = _Table(con, ref)
    big = _is_big(con, t.target, d)
    # below SAMPLE_FROM_ROWS exact distinct counts cost next to nothing
    exact = exact_distinct or d.approx_distinct is None or not big
    sampled = big and d.sample is not None
    stats = t.one_row(scan1(cols, d, exact, top_k, sampled=sampled))
    rows = _apply_scan1(cols, stats, exact, top_k)
    near_unique = [  # key candidates; their top values would (nearly) all count 1
        c.name
        for c in cols
        if c.count == rows
        and rows
        and (c.distinct == rows if c.distinct_exact else (c.distinct or 0) >= 0.5 * rows)
    ]
    if sampled and rows and (sample := sample_pass(cols, d, top_k, _wants_top(cols, near_unique))):
        stats.update(t.one_row(sample, _sample_of(d.sample, rows)))
    _apply_sketches(cols, stats)
    spans = _spans(con, cols, d) if rows else {}
    binning = {c.name: b for c in cols if (b := _bins_for(c, bins, spans.get(c.name)))}
    if d.top_values == "approx_top_k":
        spec = _scan2_spec(cols, stats, binning, images, near_unique, d)
        stats.update(_duckdb_scan2(t, cols, spec, stats, d, near_unique, top_k))
        for c in cols:  # binned from every value's count, with the now exact distinct
            every = stats.get((c.name, "top_all")) if c.kind == "numeric" else None
            if every and (exact_bins := _bins_for(c, bins, spans.get(c.name))):
                c.histogram = exact_bins.from_values(every)
    else:
        query, names = grouping_sets(t.target, cols, binning, d, max(top_k, bins + 1))
        if names:
            t.reads += 1
            _apply_grouped(cols, con.fetch(query), names, binning, top_k)
    duplicates = _duplicates(t, cols, d, stats, rows)
    keys = [c.name for c in cols if c.unique and rows > 0]
    likely = [  # near-unique, neither proven a key nor proven to repeat
        c.name
        for c in cols
        if c.name in near_unique and not c.distinct_exact and (c.distinct or 0) >= 0.97 * rows
    ]
    return TableProfile(
        table=str(ref),
        engine=con.dialect,
        rows=rows,
        columns=cols,
        duplicate_rows=duplicates,
        candidate_keys=keys,
        likely_keys=likely,
        scans=t.reads,
        seconds=round(time.perf_counter() - started, 3),
    )


def _duckdb_scan2(
    t: _Table,
    cols: list[ColumnProfile],
    spec: Scan2,
    stats: dict[tuple[str, str], Any],
    d: ProfileDialect,
    near_unique: list[str],
    top_k: int,
) -> dict[tuple[str, str], Any]:
    """Run scan 2 (with the row-hash distinct when no column can be a key) and apply it."""
    plan = scan2_duckdb(cols, spec, d)
    key = None if near_unique or ("", "distinct_rows") in stats else distinct_rows(cols, d)
    if key is not None:
        plan.add("", "distinct_rows", key)
    found = t.one_row(plan) if plan else {}
    _apply_duckdb_scan2(cols, found, spec.bins, top_k)
    _apply_sketches([c for c in cols if c.name in spec.quantiles], found)
    return found


def _wants_top(cols: list[ColumnProfile], near_unique: list[str]) -> set[str]:
    """Columns whose top values are counted from candidates: too many distinct values to
    count them all, not so many that every value would count 1."""
    return {
        c.name
        for c in cols
        if c.kind not in ("other", "boolean")
        and c.count
        and c.name not in near_unique
        and (c.distinct or 0) > EVERY_VALUE_UP_TO
    }


def _scan2_spec(
    cols: list[ColumnProfile],
    stats: dict[tuple[str, str], Any],
    binning: dict[str, Bins],
    images: dict[str, IntegerImage],
    near_unique: list[str],
    d: ProfileDialect,
) -> Scan2:
    """Scan 2's work: every value of low-cardinality columns, exact counts of the other
    columns' top candidates, exact distincts by bitmap where a column maps onto a small
    integer span, and a COUNT(DISTINCT) proof only when no near-unique column has one.

    Proving a key by COUNT(DISTINCT) costs a hash table of every value (measured: ~5 s
    and ~350 MB per column on 10M rows), so at most one column is proven that way;
    the other near-unique ones are reported as likely keys.
    """
    wants_top = _wants_top(cols, near_unique)
    spec = Scan2(bins=binning)
    for c in cols:
        if c.kind in ("other", "boolean") or not c.count:
            continue
        if c.kind == "numeric" and not c.quantiles:  # the row sample missed every value
            spec.quantiles.append(c.name)
        if c.name in wants_top:
            spec.candidates[c.name] = stats.get((c.name, "top_candidates")) or []
        elif c.name not in near_unique:
            spec.every_value.add(c.name)
            continue
        if not c.distinct_exact and d.bitmap_distinct and (bitmap := _bitmap(c, images)):
            spec.bitmaps[c.name] = bitmap
    unproven = [n for n in near_unique if not _named(cols, n).distinct_exact]
    if not any(n in spec.bitmaps for n in unproven):
        spec.verify = _best_key(cols, unproven)
    return spec


def _bitmap(
    c: ColumnProfile, images: dict[str, IntegerImage]
) -> tuple[exp.Expression, int, int] | None:
    if (image := images.get(c.name)) is None or c.min is None or c.max is None:
        return None
    try:
        lo, hi = image.of(c.min), image.of(c.max)
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    return (image.expression(c.name), lo, hi) if hi - lo < BITMAP_MAX_BITS else None


SAMPLE_FROM_ROWS = 1_000_000
# a SYSTEM sample takes whole vectors (2,048 rows): on fewer rows than this it could be
# empty, so smaller tables are sampled row by row (BERNOULLI: a read of every row)
VECTOR_SAMPLE_FROM_ROWS = 1_000_000


def _sample_of(sample: exp.TableSample | None, rows: int) -> exp.TableSample | None:
    if sample is None or rows >= VECTOR_SAMPLE_FROM_ROWS:
        return sample
    by_row = sample.copy()
    by_row.set("method", exp.var("BERNOULLI"))
    return by_row


def _is_big(con: Connector, target: exp.Table, d: ProfileDialect) -> bool:
    """Whether the table is big enough for sampling and approximate distincts to pay.

    Asked only on engines with those shortcuts; a DuckDB ``count(*)`` is answered
    from row-group metadata, so asking costs nothing.
    """
    if d.sample is None and d.approx_distinct is None:
        return False
    rows = con.fetch(exp.select(exp.Count(this=exp.Star())).from_(target))[0][0]
    return int(rows) >= SAMPLE_FROM_ROWS


def _duplicates(
    t: _Table,
    cols: list[ColumnProfile],
    d: ProfileDialect,
    stats: dict[tuple[str, str], Any],
    rows: int,
) -> int | None:
    """Whole-row duplicates: free when a column proved unique, else a row-hash distinct.

    Hashing every row costs as much as half of scan 1 on DuckDB, so it is skipped
    when an exactly verified key exists (a unique column means no duplicate rows);
    only when a near-unique column turned out to repeat does one more query run.
    """
    if ("", "distinct_rows") in stats:
        return rows - int(stats[("", "distinct_rows")])
    if any(c.unique for c in cols) or not rows:
        return 0
    key = distinct_rows(cols, d)
    if key is None:
        return None
    return rows - int(t.fetch(exp.select(key).from_(t.target))[0])


def _best_key(cols: list[ColumnProfile], near_unique: list[str]) -> list[str]:
    """The near-unique column most likely a key: among those within the estimate's error
    of the highest distinct count, integers first, then names ending in "id"."""
    found = [c for c in cols if c.name in near_unique]
    if not found:
        return []
    top = max(c.distinct or 0 for c in found)
    close = [c for c in found if (c.distinct or 0) >= 0.9 * top]
    best = max(close, key=lambda c: ("int" in c.type, c.name.lower().endswith("id"), c.distinct))
    return [best.name]


def _named(cols: list[ColumnProfile], name: str) -> ColumnProfile:
    return next(c for c in cols if c.name == name)


def _top(counts: dict[Any, int] | None, top_k: int) -> list[tuple[Any, int]]:
    items = [(v, int(n)) for v, n in (counts or {}).items() if v is not None]
    return sorted(items, key=lambda kv: (-kv[1], str(kv[0])))[:top_k]


def _apply_duckdb_scan2(
    cols: list[ColumnProfile],
    found: dict[tuple[str, str], Any],
    binning: dict[str, Bins],
    top_k: int,
) -> None:
    for c in cols:
        if (every := found.get((c.name, "top_all"))) is not None:
            c.top_values = _top(every, top_k)
            c.distinct, c.distinct_exact = sum(v is not None for v in every), True
        elif (top := found.get((c.name, "top"))) is not None:
            c.top_values = _top(top, top_k)
        if c.name in binning and (c.name, "histogram") in found:
            c.histogram = binning[c.name].from_bounded(found[(c.name, "histogram")])
        if (exact := found.get((c.name, "exact_distinct"))) is not None:
            c.distinct, c.distinct_exact = int(exact), True


def _apply_grouped(
    cols: list[ColumnProfile],
    rows: list[tuple],
    names: list[tuple[str, str]],
    binning: dict[str, Bins],
    top_k: int,
) -> None:
    groups: dict[tuple[str, str], dict[Any, int]] = {}
    for row in rows:
        gid = int(row[0])
        value, n = row[1 + gid], int(row[-2])
        groups.setdefault(names[gid], {})[value] = n
    for c in cols:
        if (c.name, "top") in groups:
            c.top_values = _top(groups[(c.name, "top")], top_k)
        if c.name in binning:
            counts = {
                int(k): v for k, v in groups.get((c.name, "histogram"), {}).items() if k is not None
            }
            c.histogram = binning[c.name].to_bins(counts)


def profile_url(url: str, table: str, **options: Any) -> TableProfile:
    """Open ``url`` READ-ONLY (the checker never writes) and profile ``table``."""
    with connect(url, read_only=True) as con:
        if con.dialect in DIALECTS:
            return profile_table(con, table, **options)
        return _profile_through_duckdb(con, table, **options)


def _profile_through_duckdb(con: Connector, table: str, **options: Any) -> TableProfile:
    """SQLite and MySQL/MariaDB lack the statistics the profiler computes in-engine
    (quantiles, approximate distincts, regular expressions); DuckDB reads the table through
    its scanner, attached read-only, and computes them. The source still does one read."""
    if con.duckdb_attach() is None:
        raise ProfileError(f"profiling is not supported on {con.dialect}", table=table)
    with connect("duckdb:///:memory:") as duck:
        duck.attach(con, "source")  # type: ignore[attr-defined]
        duck.execute("USE source")
        result = profile_table(duck, table, **options)
    result.engine = f"duckdb over {con.dialect}"
    return result
