"""Check suites from ``checks/*.yml`` or Python; both build the same `Suite`.

A suite file::

    connection: warehouse          # a connection name of crane.yml or a URL
    sample_rows: 5                 # failing rows kept per failed check (0: none)
    tables:
      orders:
        filter: "order_date >= DATE '2024-01-01'"   # optional, applies to every check
        checks:
          - row_count: {min: 1}
          - not_null: [id, customer_id]             # one check per column
          - unique: id
          - accepted_values: {column: status, values: [new, paid]}
          - type: range                             # the long form
            column: amount
            min: 0
            max: 100000                             # range: min/max are the bounds
            max_violations: 10                      # violating rows tolerated (default 0)
            severity: warn

A check item is ``{type: …, …}`` or ``{<type>: <options>}`` where the options are a
mapping, a column name or a list of columns. A check-level ``filter`` is ANDed with
the table's. Checks that count violating rows (and ``unique``) tolerate
``max_violations`` rows or ``max_pct`` percent; ``max`` still means the tolerance
there, except where it is the check's own bound (``range``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crane.errors import ConfigError
from crane.quality.checks import PER_COLUMN, check_types
from crane.quality.checks.base import Check, CheckSpec

DEFAULT_CONNECTION = "warehouse"
CHECKS_DIR = "checks"


@dataclass
class Suite:
    """Checks to run together, and the connections (name → URL) they read."""

    name: str
    checks: list[Check]
    connections: dict[str, str]
    sample_rows: int = 5

    def select(self, table: str) -> Suite:
        """The same suite restricted to one table (``crane check orders``)."""
        keep = [
            c for c in self.checks if c.spec.table == table or c.spec.table.endswith(f".{table}")
        ]
        return Suite(self.name, keep, self.connections, self.sample_rows)


def build_suite(
    specs: Iterable[CheckSpec | dict[str, Any]],
    connections: dict[str, str],
    *,
    name: str = "suite",
    default_connection: str | None = None,
    sample_rows: int = 5,
) -> Suite:
    """A suite from check specs (the Python API).

    >>> suite = build_suite(
    ...     [{"type": "not_null", "table": "orders", "columns": ["id", "amount"]}],
    ...     {"db": "duckdb:///:memory:"},
    ... )
    >>> [c.name for c in suite.checks]
    ['orders.not_null(id)', 'orders.not_null(amount)']
    """
    default = default_connection or next(iter(connections), DEFAULT_CONNECTION)
    checks: list[Check] = []
    for raw in specs:
        spec = raw if isinstance(raw, CheckSpec) else _spec(raw, "<python>")
        checks.extend(_make(s, default, "<python>") for s in _expand(spec))
    _unique_names(checks)
    return Suite(name, checks, dict(connections), sample_rows)


def load_suite(path: Path, resolve: Callable[[str], str], default_connection: str) -> Suite:
    """Read one suite file; ``resolve`` turns a connection name or URL into a URL."""
    if path.suffix == ".py":
        return load_python_suite(path, resolve, default_connection)
    import yaml

    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"cannot read check suite: {error}", file=display, line=line) from error
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise ConfigError("a check suite needs a 'tables:' mapping", file=display)
    lines = _check_lines(text)
    suite_conn = str(doc.get("connection") or default_connection)
    connections: dict[str, str] = {}
    specs: list[CheckSpec] = []
    for table, body in doc["tables"].items():
        body = body or {}
        if isinstance(body, list):
            body = {"checks": body}
        conn = str(body.get("connection") or suite_conn)
        for index, item in enumerate(body.get("checks") or []):
            line = lines.get((str(table), index))
            where = f"{display}, line {line}" if line else display
            where += f", tables.{table}.checks[{index}]"
            data = _normalise(item, where)
            data.setdefault("table", str(body.get("table") or table))
            data["filter"] = _and(body.get("filter"), data.get("filter"))
            data.setdefault("connection", conn)
            specs.append(_spec(data, where))
    for spec in specs:
        for name in (spec.connection, spec.params.get("to_connection")):
            if name and name not in connections:
                connections[name] = resolve(str(name))
    suite = build_suite(
        specs,
        connections,
        name=path.stem,
        default_connection=suite_conn,
        sample_rows=int(doc.get("sample_rows", 5)),
    )
    return suite


def _display(path: Path) -> str:
    """The suite's path as a user wrote it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_lines(text: str) -> dict[tuple[str, int], int]:
    """(table, check index) -> the line the check starts on, for messages."""
    import yaml

    found: dict[tuple[str, int], int] = {}
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return found
    tables = _child(root, "tables")
    for key, body in tables.value if isinstance(tables, yaml.MappingNode) else []:
        checks = _child(body, "checks") if isinstance(body, yaml.MappingNode) else body
        if isinstance(checks, yaml.SequenceNode):
            for index, item in enumerate(checks.value):
                found[(str(key.value), index)] = item.start_mark.line + 1
    return found


def _child(node: Any, name: str) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == name), None)
    return None


def find_suites(root: Path) -> list[Path]:
    """``checks/*.yml``/``*.yaml`` and ``checks/*.py`` (``_*.py`` are helpers, not suites)."""
    folder = root / CHECKS_DIR
    if not folder.is_dir():
        return []
    python = [p for p in folder.glob("*.py") if not p.name.startswith("_")]
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml"), *python])


def load_python_suite(path: Path, resolve: Callable[[str], str], default_connection: str) -> Suite:
    """A Python suite file: a module-level ``checks`` list of `CheckSpec` objects or dicts
    (the same fields as YAML), and optionally ``connection`` and ``sample_rows``.

    ::

        from crane.quality import CheckSpec
        connection = "warehouse"
        checks = [CheckSpec(type="unique", table="orders", column="id"),
                  {"type": "rule", "table": "orders", "expression": "amount >= 0"}]
    """
    import importlib.util

    name = f"crane_checks_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot import the check suite", file=str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise ConfigError(f"the check suite failed to import: {error}", file=str(path)) from error
    raw = getattr(module, "checks", None)
    if not isinstance(raw, list | tuple):
        raise ConfigError("a Python check suite defines a list named 'checks'", file=str(path))
    default = str(getattr(module, "connection", None) or default_connection)
    specs = [s if isinstance(s, CheckSpec) else _spec(dict(s), f"{path}: checks") for s in raw]
    names = {s.connection or default for s in specs}
    names |= {str(s.params["to_connection"]) for s in specs if s.params.get("to_connection")}
    return build_suite(
        specs,
        {n: resolve(n) for n in sorted(names)},
        name=path.stem,
        default_connection=default,
        sample_rows=int(getattr(module, "sample_rows", 5)),
    )


def _normalise(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"type": item}
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a check is a mapping, got {item!r}")
    if "type" in item:
        return dict(item)
    known = set(check_types.names())
    types = [k for k in item if k in known]
    if len(types) != 1:
        import difflib

        keys = ", ".join(map(str, item))
        near = [m for k in item for m in difflib.get_close_matches(str(k), known, n=1)]
        guess = f" (did you mean '{near[0]}'?)" if len(types) == 0 and near else ""
        raise ConfigError(
            f"{where}: cannot tell the check type from keys {keys}{guess}",
            hint=f"write 'type: …' (known: {', '.join(sorted(known))})",
        )
    kind = types[0]
    data = {k: v for k, v in item.items() if k != kind}
    options = item[kind]
    if isinstance(options, dict):
        data.update(options)
    elif isinstance(options, list):
        data["columns"] = options
    elif options is not None:
        data["column"] = options
    data["type"] = kind
    return data


def _spec(data: dict[str, Any], where: str) -> CheckSpec:
    try:
        return CheckSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: {first['msg']}", field=field_name) from error


def _expand(spec: CheckSpec) -> list[CheckSpec]:
    if spec.type in PER_COLUMN and spec.columns and not spec.column:
        return [spec.model_copy(update={"column": c, "columns": None}) for c in spec.columns]
    return [spec]


def _make(spec: CheckSpec, default_connection: str, where: str) -> Check:
    cls = check_types.get(spec.type)
    return cls(spec, spec.connection or default_connection)


def _and(first: str | None, second: str | None) -> str | None:
    if first and second:
        return f"({first}) AND ({second})"
    return first or second


def _unique_names(checks: list[Check]) -> None:
    """Give repeated names a #2, #3 suffix: results and history are keyed by name."""
    seen: dict[str, int] = {}
    for check in checks:
        name = check.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1 and not check.spec.name:
            check.spec.name = f"{name}#{seen[name]}"


__all__ = ["Suite", "build_suite", "find_suites", "load_suite", "merge_suites"]


def merge_suites(suites: list[Suite]) -> Suite:
    """Several suite files run as one: one scan per table across all of them."""
    if len(suites) == 1:
        return suites[0]
    checks = [c for s in suites for c in s.checks]
    connections: dict[str, str] = {}
    for suite in suites:
        connections.update(suite.connections)
    _unique_names(checks)
    rows = max((s.sample_rows for s in suites), default=5)
    return Suite("+".join(s.name for s in suites), checks, connections, rows)
