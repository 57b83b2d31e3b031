"""Secret masking in text, URLs and log records."""

import doctest
import io
import logging

import pytest

from crane.config import secrets
from crane.config.secrets import MaskingFilter, mask, register, register_env, register_url


@pytest.fixture(autouse=True)
def clean():
    secrets.forget_all()
    yield
    secrets.forget_all()


def test_doctests():
    result = doctest.testmod(secrets)
    assert result.attempted > 0 and result.failed == 0


def test_known_secret_masked_everywhere_in_text():
    register("Tr0ub4dor&3")
    assert mask("a Tr0ub4dor&3 b Tr0ub4dor&3") == "a *** b ***"
    # the URL-encoded form, as it appears inside a connection URL, too
    assert mask("pg://u:Tr0ub4dor%263@h/db") == "pg://u:***@h/db"


def test_url_password_masked_without_registration():
    assert (
        mask("mysql://root:hunter2@127.0.0.1:3306/test") == "mysql://root:***@127.0.0.1:3306/test"
    )
    assert mask("no url here: a:b@c") == "no url here: a:b@c"


def test_env_secret_names():
    register_env(
        {
            "SOURCE_DB_PASSWORD": "pgpass-1",
            "API_TOKEN": "tok-abcdef",
            "AWS_SECRET_ACCESS_KEY": "aws-xyz-123",
            "SOURCE_DB_HOST": "db.example.com",
            "DSN": "postgresql://a:dsnpass99@h/db",
        }
    )
    text = "pgpass-1 tok-abcdef aws-xyz-123 db.example.com dsnpass99"
    assert mask(text) == "*** *** *** db.example.com ***"


def test_short_values_are_not_masked_as_free_text():
    register("pw")
    assert mask("password pw") == "password pw"


def test_longest_secret_wins():
    register("abcd", "abcdefgh")
    assert mask("abcdefgh") == "***"


def test_register_url():
    register_url("postgresql://u:s3cret-x@h/db")
    assert mask("error near s3cret-x") == "error near ***"


def test_logging_filter_masks_message_args_and_traceback():
    register("leaky-secret")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("crane.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connect failed with %s", "leaky-secret")
        try:
            raise RuntimeError("boom leaky-secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "leaky-secret" not in out
    assert "connect failed with ***" in out and "boom ***" in out


def test_secret_split_by_terminal_codes_is_still_masked():
    register("tok-3a9f-secret")
    assert mask("FROM missing_tok\x1b[4m-\x1b[0m3a9f-secret") == "FROM missing_***"


def test_secret_query_parameters_masked_without_registration():
    """libpq and most drivers take `?password=` (and `sslpassword`, tokens) in the URL."""
    assert mask("postgresql://u@h/db?sslmode=require&password=hunter22zz&x=1") == (
        "postgresql://u@h/db?sslmode=require&password=***&x=1"
    )
    assert mask("snowflake://acct/db?TOKEN=abc-def-9&warehouse=wh") == (
        "snowflake://acct/db?TOKEN=***&warehouse=wh"
    )
    register_url("postgresql://h/db?sslpassword=s3cr3t-ssl")
    assert mask("bad passphrase s3cr3t-ssl") == "bad passphrase ***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # DuckDB's postgres and mysql scanners quote the whole DSN when ATTACH fails; a
        # short or all-digit password is never a known secret, so only the shape can hide it
        (
            'IO Error: Unable to connect to Postgres at "host=h port=5999 dbname=test '
            'user=postgres password=xy1": connection refused',
            'IO Error: Unable to connect to Postgres at "host=h port=5999 dbname=test '
            'user=postgres password=***": connection refused',
        ),
        (
            'Failed to connect to MySQL database with parameters "host=h password=1234 port=1"',
            'Failed to connect to MySQL database with parameters "host=h password=*** port=1"',
        ),
        ("dsn: host=h password='a b\\'c' user=u", "dsn: host=h password=*** user=u"),
        ("sslpassword = s3 dbname=x", "sslpassword = *** dbname=x"),
    ],
)
def test_keyword_dsn_passwords_masked_without_registration(text, expected):
    assert mask(text) == expected


def test_dsn_password_masked_inside_json_keeps_it_valid():
    import json

    text = json.dumps({"error": 'Unable to connect at "host=h password=xy1": refused'})
    masked = json.loads(mask(text))
    assert masked == {"error": 'Unable to connect at "host=h password=***": refused'}
