"""Templating of SQL and commands with the run context — values only, never code.

``{{ name.path }}`` is replaced by a value looked up in the context (``params``,
``inputs``, ``run_id``, ``ds``, ``logical_date``, ``data_interval_start``, …).
There are no expressions, loops or calls: a template cannot execute anything.
Values are *quoted for where they land* unless a filter says otherwise:

- in SQL, ``{{ ds }}`` becomes the literal ``'2024-01-02'`` (bound as a value),
  ``{{ params.table | ident }}`` a quoted identifier, ``| raw`` the text as is;
- in shell commands values are shell-quoted (``shlex.quote``), ``| raw`` as is.

>>> render("SELECT * FROM t WHERE day = {{ ds }}", {"ds": "2024-01-02"}, sql_quote("duckdb"))
"SELECT * FROM t WHERE day = '2024-01-02'"
>>> render("echo {{ params.who }}", {"params": {"who": "a b"}}, shell_quote)
"echo 'a b'"
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from crane.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*(?:\|\s*([a-z_]+)\s*)?\}\}")
Quote = Callable[[Any, str | None], str]


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """``inputs.extract.rows`` → ``context['inputs']['extract']['rows']`` (attributes too)."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif not isinstance(value, Mapping) and not part.startswith("_") and hasattr(value, part):
            value = getattr(value, part)
        else:
            known = ", ".join(sorted(value)) if isinstance(value, Mapping) else ""
            raise ConfigError(
                f"template value {{{{ {path} }}}} is not defined"
                + (f"; known here: {known}" if known else "")
            )
    return value


def render(text: str, context: Mapping[str, Any], quote: Quote) -> str:
    """Replace every ``{{ path | filter }}`` in ``text`` by its quoted value."""

    def replace(match: re.Match[str]) -> str:
        return quote(lookup(context, match.group(1)), match.group(2))

    return _PLACEHOLDER.sub(replace, text)


def placeholders(text: str) -> list[str]:
    """The paths a template refers to (for validation before a run)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text)]


def raw(value: Any, filter_: str | None) -> str:
    """No quoting at all: for templated Python arguments and trusted text."""
    return _text(value)


def shell_quote(value: Any, filter_: str | None) -> str:
    if filter_ == "raw":
        return _text(value)
    _no_filter(filter_, ("raw",))
    return shlex.quote(_text(value))


def sql_quote(dialect: str) -> Quote:
    """A quoter rendering values as SQL literals of ``dialect`` (``ident``: identifiers)."""

    def quote(value: Any, filter_: str | None) -> str:
        from sqlglot import exp

        from crane.connectors.base import TableRef

        if filter_ == "raw":
            return _text(value)
        if filter_ == "ident":
            return TableRef.parse(str(value)).sql(dialect)
        _no_filter(filter_, ("raw", "ident"))
        return exp.convert(value).sql(dialect)

    return quote


def _text(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _no_filter(filter_: str | None, known: tuple[str, ...]) -> None:
    if filter_ is not None:
        raise ConfigError(f"unknown template filter {filter_!r}; known: {', '.join(known)}")
