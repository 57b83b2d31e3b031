import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect


def test_write_append_replace_and_read_back(duck_url):
    batch = pa.table({"id": [1, 2, 3], "name": ["a", None, "c"]})
    with connect(duck_url) as con:
        assert con.write(batch.to_reader(), TableRef("t", "raw"), "append") == 3
        assert con.write(batch.to_reader(), TableRef("t", "raw"), "append") == 3
        assert con.execute("select count(*) from raw.t") == [(6,)]
        assert con.write(batch.to_reader(), TableRef("t", "raw"), "replace") == 3
        back = con.read(TableRef("t", "raw"), batch_rows=2)
        batches = list(back)
        assert [b.num_rows for b in batches] == [2, 1]
        assert pa.Table.from_batches(batches).equals(batch)


def test_transaction_rolls_back_on_error(duck_url):
    with connect(duck_url) as con:
        con.execute("create table t (x int)")
        with pytest.raises(RuntimeError), con.transaction():
            con.execute("insert into t values (1)")
            raise RuntimeError("boom")
        assert con.execute("select count(*) from t") == [(0,)]


def test_read_only_refuses_writes(duck_url):
    with connect(duck_url) as con:
        con.execute("create table t (x int)")
    with connect(duck_url, read_only=True) as con, pytest.raises(Exception, match="read-only"):
        con.execute("insert into t values (1)")


def test_writable_file_has_bounded_memory_and_url_options_override(duck_url):
    def setting(con, name):
        return con.execute("select current_setting(?)", [name])[0][0]

    with connect(duck_url) as con:
        assert setting(con, "memory_limit") == "244.1 MiB"  # 256MB, as DuckDB reports it
        assert setting(con, "preserve_insertion_order") is False
    with connect(duck_url + "?memory_limit=1GB&threads=1") as con:
        assert setting(con, "memory_limit") == "953.6 MiB"
        assert setting(con, "threads") == 1
        assert setting(con, "preserve_insertion_order") is False


def test_a_file_named_like_one_of_its_schemas_is_no_ambiguous_reference(tmp_path):
    """DuckDB names a file's catalog after its stem: ``analytics.duckdb`` holding a schema
    ``analytics`` made ``analytics.t`` ambiguous ("catalog or schema")."""
    url = f"duckdb:///{tmp_path / 'analytics.duckdb'}"
    batch = pa.table({"id": [1, 2]})
    with connect(url) as con:
        con.execute("CREATE SCHEMA analytics")
        assert con.write(batch.to_reader(), TableRef("t", "analytics"), "replace") == 2
        assert con.execute("SELECT count(*) FROM analytics.t") == [(2,)]
        assert con.table_schema(TableRef("t", "analytics")).names == ["id"]
        assert con.read(TableRef("t", "analytics")).read_all().num_rows == 2
    with connect(url, read_only=True) as con:  # and the rows are in the file itself
        assert con.execute("SELECT count(*) FROM analytics.t") == [(2,)]
    import duckdb

    with duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True) as raw:
        assert raw.execute('SELECT count(*) FROM analytics."analytics".t').fetchall() == [(2,)]
