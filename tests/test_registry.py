import pytest

from crane.connectors import TableRef, connect
from crane.connectors.base import ConnectionURL
from crane.errors import CraneError, UnknownNameError


def test_unknown_scheme_suggests_the_closest():
    with pytest.raises(UnknownNameError) as info:
        connect("postgresq://x@localhost/db")
    assert "did you mean 'postgresql'" in str(info.value)


def test_error_message_names_its_context():
    error = CraneError("value does not fit", pipeline="orders", table="raw.orders", column="amt")
    assert str(error) == "pipeline orders, table raw.orders, column amt: value does not fit"
    assert error.column == "amt" and error.row is None and not error.transient


def test_url_masks_password():
    url = ConnectionURL.parse("postgresql://bob:s3cret@db.local:5433/shop")
    assert (url.host, url.port, url.database, url.user) == ("db.local", 5433, "shop", "bob")
    assert "s3cret" not in url.masked


def test_table_ref_is_always_quoted():
    assert TableRef("order", "raw").sql("postgres") == '"raw"."order"'
    assert TableRef.parse("a.b") == TableRef("b", "a")


def test_import_crane_is_light():
    """`import crane` must not pull in the data plane (DESIGN: no import side effects)."""
    import subprocess
    import sys

    code = "import sys, crane; print(any(m in sys.modules for m in ('duckdb', 'pyarrow')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_resolves():
    import crane

    for name in crane.__all__:
        assert getattr(crane, name) is not None, name
