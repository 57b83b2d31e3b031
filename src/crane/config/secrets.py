"""Secret masking: a known secret value never reaches a log line, an error or a run record.

Secrets become *known* when a project loads: connection passwords (from specs
and from URLs) and the values of environment variables whose names say they are
secret (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``, ``*KEY*``). `mask` replaces
each known value (and its URL-encoded form) by ``***``; independently of what
is known, it also blanks the password part of anything shaped like a URL
(``scheme://user:pw@host``), secret-named query parameters (``?password=…``) and
``password=…`` in a keyword DSN, so a secret typed inline is masked too.

The registry is process-wide on purpose: a logging filter, an exception
rendered by the CLI and a run record written by the runner must all agree.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
# Values shorter than this are not masked as free text: masking "pw" would
# shred every word containing it. URL passwords are masked at any length.
MIN_SECRET_LENGTH = 4
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
# ?password=… / &sslpassword=… / ?token=…: drivers take secrets in the query string too
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&][^=&#\s]*(?:PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL)[^=&#\s]*=)"
    r"(?P<value>[^&#\s\"'<>\\]+)",  # quotes and backslashes end it: JSON and repr() around
    re.IGNORECASE,
)

# password=… in a libpq/MySQL keyword DSN ("host=h user=u password=pw"), which DuckDB's
# scanners quote whole when an ATTACH fails; quoted values may hold spaces
_DSN_PASSWORD = re.compile(
    r"(?P<head>(?<![\w.])\w*(?:password|passwd)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\"&\\]+)",  # a backslash ends it: JSON around
    re.IGNORECASE,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Make ``values`` known secrets (empty and very short values are ignored)."""
    global _pattern
    added = False
    with _lock:
        for value in values:
            if not value or len(value) < MIN_SECRET_LENGTH or _looks_like_a_count(value):
                continue
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                if form not in _known:
                    _known.add(form)
                    added = True
        if added:
            # longest first, so a secret that contains another is masked whole
            ordered = sorted(_known, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def _looks_like_a_count(value: str) -> bool:
    # A short all-digit value (a port, a PIN) would mask row counts and years in
    # every message; such values are still masked inside URLs by pattern.
    return value.isdigit() and len(value) < 8


def register_url(url: str | None) -> None:
    """Make the password inside a connection URL a known secret."""
    if not url or "://" not in url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        register(unquote(password))
    register(*(value for name, value in parse_qsl(parts.query) if is_secret_name(name)))


def register_env(env: Mapping[str, str]) -> None:
    """Make the values of secret-named variables (``*PASSWORD*``, ``*TOKEN*``, …) known."""
    register(*(value for name, value in env.items() if is_secret_name(name)))
    for value in env.values():
        if "://" in value:
            register_url(value)


def is_secret_name(name: str) -> bool:
    """Whether a variable or field name says its value is a secret."""
    return bool(_SECRET_NAME.search(name))


def forget_all() -> None:
    """Forget every known secret (tests use it to start clean)."""
    global _pattern
    with _lock:
        _known.clear()
        _pattern = None


def mask(text: str) -> str:
    """``text`` with every known secret and every URL password replaced by ``***``.

    >>> register("s3cr3t-pw")
    >>> mask("login failed for password s3cr3t-pw")
    'login failed for password ***'
    >>> mask("postgresql://app:hunter2@db:5432/shop")
    'postgresql://app:***@db:5432/shop'
    """
    if not text:
        return text
    if "\x1b[" in text:  # sqlglot underlines the offending token, splitting a secret in two
        text = _ANSI.sub("", text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)
    return _DSN_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def mask_all(values: Iterable[str]) -> list[str]:
    return [mask(v) for v in values]


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message of every record.

    Installed on handlers by the CLI; it renders the message once (with its
    args) and replaces it, so formatters downstream only see masked text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        masked = mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def install_logging_filter(logger: logging.Logger | None = None) -> MaskingFilter:
    """Attach a `MaskingFilter` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    flt = MaskingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
