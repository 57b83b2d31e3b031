"""Validity and accuracy: accepted values, ranges, lengths, regexes, built-in formats
and "castable to a type". Each counts violating ROWS; NULLs are not violations here
(``not_null`` says whether NULL is allowed)."""

from __future__ import annotations

from sqlglot import exp

from crane.errors import ConfigError
from crane.quality.checks import check_types
from crane.quality.checks.base import Context, RowCheck, as_float, literal, not_null

# Built-in formats in the regex subset every engine shares (no \d, no lookaround).
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
FORMATS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    "url": r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[^ ]*)?$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "e164": r"^\+[1-9][0-9]{1,14}$",
    "iso_date": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "ipv4": rf"^({_OCTET}\.){{3}}{_OCTET}$",
}

# "castable" where the engine has no TRY_CAST: the text shape each type accepts.
CAST_PATTERNS: dict[str, str] = {
    "integer": r"^ *[-+]?[0-9]+ *$",
    "bigint": r"^ *[-+]?[0-9]+ *$",
    "decimal": r"^ *[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)? *$",
    "double": r"^ *[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)? *$",
    "date": FORMATS["iso_date"],
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$",
    "boolean": r"^(true|false|TRUE|FALSE|True|False|t|f|0|1|yes|no)$",
}


def _text(check: RowCheck, ctx: Context) -> exp.Expr:
    return exp.cast(check.col, ctx.dialect(check.connection).text_type)


@check_types.register("accepted_values")
class AcceptedValues(RowCheck):
    """Every non-NULL value of ``column`` is one of ``values``."""

    def validate(self) -> None:
        self.require("values")

    def predicate(self, ctx: Context) -> exp.Expr:
        values = [literal(v) for v in self.options["values"]]
        return exp.and_(not_null(self.col), exp.Not(this=exp.In(this=self.col, expressions=values)))


@check_types.register("range")
class Range(RowCheck):
    """Values of ``column`` within ``min``/``max`` (inclusive; either may be omitted)."""

    dimension = "accuracy"
    bound_options = ("min", "max")

    def validate(self) -> None:
        if "min" not in self.options and "max" not in self.options:
            raise ConfigError(f"check {self.name!r} (range) needs min and/or max")

    def predicate(self, ctx: Context) -> exp.Expr:
        parts: list[exp.Expr] = []
        if "min" in self.options:
            parts.append(exp.LT(this=self.col, expression=literal(self.options["min"])))
        if "max" in self.options:
            parts.append(exp.GT(this=self.col, expression=literal(self.options["max"])))
        return exp.or_(*parts) if len(parts) > 1 else parts[0]


@check_types.register("length")
class Length(RowCheck):
    """Text length of ``column`` within ``min_length``/``max_length``."""

    def validate(self) -> None:
        if "min_length" not in self.options and "max_length" not in self.options:
            raise ConfigError(f"check {self.name!r} (length) needs min_length and/or max_length")

    def predicate(self, ctx: Context) -> exp.Expr:
        length = exp.Length(this=_text(self, ctx))
        parts: list[exp.Expr] = []
        if "min_length" in self.options:
            low = as_float(self.options["min_length"])
            parts.append(exp.LT(this=length, expression=literal(int(low or 0))))
        if "max_length" in self.options:
            high = as_float(self.options["max_length"])
            parts.append(exp.GT(this=length.copy(), expression=literal(int(high or 0))))
        return exp.or_(*parts) if len(parts) > 1 else parts[0]


@check_types.register("regex")
class Regex(RowCheck):
    """Every non-NULL value matches ``pattern`` (a search: anchor it with ^…$)."""

    def validate(self) -> None:
        self.require("pattern")

    def pattern(self) -> str:
        return str(self.options["pattern"])

    def predicate(self, ctx: Context) -> exp.Expr:
        dialect = ctx.dialect(self.connection)
        matches = dialect.regex(_text(self, ctx), exp.Literal.string(self.pattern()))
        return exp.and_(not_null(self.col), exp.Not(this=exp.paren(matches)))


@check_types.register("format")
class Format(Regex):
    """A built-in format: email, url, uuid, e164 (phone), iso_date, ipv4."""

    def validate(self) -> None:
        self.require("format")
        if self.options["format"] not in FORMATS:
            known = ", ".join(sorted(FORMATS))
            raise ConfigError(f"unknown format {self.options['format']!r}; known: {known}")

    def pattern(self) -> str:
        return FORMATS[self.options["format"]]


@check_types.register("castable")
class Castable(RowCheck):
    """Every non-NULL value can be cast to ``to`` (TRY_CAST where the engine has it,
    else the text shape of the type)."""

    def validate(self) -> None:
        self.require("to")

    def predicate(self, ctx: Context) -> exp.Expr:
        dialect = ctx.dialect(self.connection)
        target = str(self.options["to"]).lower()
        if dialect.try_cast:
            cast = exp.TryCast(this=_text(self, ctx), to=exp.DataType.build(target))
            return exp.and_(not_null(self.col), exp.Is(this=cast, expression=exp.null()))
        if target not in CAST_PATTERNS:
            known = ", ".join(sorted(CAST_PATTERNS))
            raise ConfigError(f"castable to {target!r} on {dialect.name}: use one of {known}")
        matches = dialect.regex(_text(self, ctx), exp.Literal.string(CAST_PATTERNS[target]))
        return exp.and_(not_null(self.col), exp.Not(this=exp.paren(matches)))
