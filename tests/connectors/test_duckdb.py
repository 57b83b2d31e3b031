import pyarrow as pa
import pytest

from crane.connectors import TableRef, connect

PG = "postgresql://postgres@127.0.0.1:5432/test"


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


def test_a_streamed_replace_declares_mostly_distinct_text_fsst(duck_url):
    """The first batch decides which text columns are mostly distinct (declared ``USING
    COMPRESSION fsst``: no dictionary attempt); every batch still arrives, and every column
    keeps its Arrow type and values."""
    import datetime as dt
    import decimal

    from crane.connectors.duckdb import _mostly_distinct_text

    n = 30_000
    first_at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    data = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "email": pa.array([f"user{i}@example.com" for i in range(n)], pa.large_string()),
            "status": pa.array([("new", "active", "gone")[i % 3] for i in range(n)]),
            "note": pa.array([None if i % 3 else f"note {i}" for i in range(n)]),
            "amount": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
            "at": pa.array(
                [first_at + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "tags": pa.array([[i, -i] for i in range(n)], pa.list_(pa.int32())),
        }
    )

    def stream(rows_per_batch: int) -> pa.RecordBatchReader:
        batches = data.to_batches(max_chunksize=rows_per_batch)
        return pa.RecordBatchReader.from_batches(data.schema, batches)

    replay, fsst = _mostly_distinct_text(stream(12_000))
    assert fsst == {"email", "note"}  # note: distinct among its non-NULL values
    assert replay.read_all().equals(data)
    assert _mostly_distinct_text(stream(5_000))[1] == set()  # too few rows to judge
    with connect(duck_url) as con:
        assert con.write(stream(12_000), TableRef("people"), "replace") == n
        con.execute("CHECKPOINT")  # segments are compressed when written to the file
        codecs = dict(
            con.execute(
                "SELECT column_name, string_agg(DISTINCT compression, ',') FROM"
                " pragma_storage_info('people') WHERE segment_type = 'VARCHAR' GROUP BY 1"
            )
        )
        back = con.arrow("SELECT * FROM people ORDER BY id")
    assert codecs["email"] == codecs["note"] == "FSST" and codecs["status"] == "Dictionary"
    assert back.cast(data.schema).equals(data)
    assert back.column("tags").type == pa.list_(pa.int32())


@pytest.mark.integration
def test_timetz_keeps_its_offset_into_postgres(duck_url, pg_schema):
    """DuckDB's Arrow export dropped a TIMETZ's offset: DuckDB -> PostgreSQL turned
    23:59:59+05:30 into a ``time`` column holding 23:59:59. It crosses as its text, and the
    target column is created as ``time with time zone``."""
    with connect(duck_url) as duck, connect(PG) as pg:
        duck.execute("CREATE TABLE z (id int, t TIMETZ)")
        duck.execute("INSERT INTO z VALUES (1, '23:59:59+05:30'), (2, '00:00:00-08'), (3, NULL)")
        for source, params in ((TableRef("z"), ()), ("SELECT * FROM z WHERE id > ?", [0])):
            copy = TableRef("copy", pg_schema)
            pg.write(duck.read(source, params=params), copy, "replace")
            made = pg.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attname = 't'",
                [f'"{pg_schema}".copy'],
            )
            assert made == [("time with time zone",)]
            rows = pg.execute(f'SELECT t::text FROM "{pg_schema}".copy ORDER BY id')
            assert rows == [("23:59:59+05:30",), ("00:00:00-08",), (None,)]
