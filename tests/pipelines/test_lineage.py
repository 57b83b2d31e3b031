"""OpenLineage RunEvents: START/COMPLETE/FAIL to a JSON-lines file and to a real HTTP endpoint."""

import doctest
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from crane.config import secrets
from crane.pipelines import lineage as lineage_module
from crane.pipelines.lineage import LineageDataset, LineageEmitter


def test_doctests():
    result = doctest.testmod(lineage_module)
    assert result.attempted > 0 and result.failed == 0


def _datasets():
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
    url = "postgresql://etl:pw-9999@db:5432/shop"
    source = LineageDataset.from_table(url, "public.orders", schema)
    target = LineageDataset.from_table("duckdb:////data/wh.duckdb", "main.orders", schema, rows=42)
    return source, target


def test_dataset_naming_drops_credentials():
    source, target = _datasets()
    assert (source.namespace, source.name) == ("postgres://db:5432", "shop.public.orders")
    assert (target.namespace, target.name) == ("duckdb:///data/wh.duckdb", "main.orders")
    mysql = LineageDataset.from_table("mariadb://root@127.0.0.1:3306/test", "orders")
    assert (mysql.namespace, mysql.name) == ("mysql://127.0.0.1:3306", "test.orders")


def test_run_cycle_written_as_json_lines(tmp_path):
    source, target = _datasets()
    path = tmp_path / "lineage" / "events.jsonl"
    emitter = LineageEmitter(file=path, namespace="shop")
    emitter.start("run-1", "orders", [source], [target])
    emitter.complete("run-1", "orders", [source], [target])
    emitter.fail("run-2", "orders", RuntimeError("boom"), [source], [])
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "FAIL"]
    start, complete, fail = events
    assert start["run"]["runId"] == complete["run"]["runId"] != fail["run"]["runId"]
    uuid.UUID(start["run"]["runId"])  # OpenLineage requires UUIDs
    assert start["job"] == {"namespace": "shop", "name": "orders", "facets": {}}
    fields = start["inputs"][0]["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [("id", "int64"), ("email", "string")]
    assert start["outputs"][0]["facets"]["schema"]["fields"][1]["name"] == "email"
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 42
    assert fail["run"]["facets"]["errorMessage"]["message"] == "boom"
    assert start["schemaURL"].endswith("#/$defs/RunEvent") and start["eventTime"]
    assert "pw-9999" not in path.read_text()


def test_run_id_that_is_a_uuid_is_kept():
    run_id = str(uuid.uuid4())
    event = LineageEmitter().start(run_id, "job", [], [])
    assert event["run"]["runId"] == run_id


def test_fail_masks_secrets(tmp_path):
    secrets.register("lineage-secret-7")
    path = tmp_path / "l.jsonl"
    LineageEmitter(file=path).fail("r", "job", "auth failed for lineage-secret-7 at pg://u:x1@h/d")
    message = json.loads(path.read_text())["run"]["facets"]["errorMessage"]["message"]
    assert message == "auth failed for *** at pg://u:***@h/d"


class _Collector(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    _Collector.received = []
    _Collector.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_events_posted_to_http_endpoint(endpoint, tmp_path):
    source, target = _datasets()
    emitter = LineageEmitter(file=tmp_path / "events.jsonl", url=endpoint)
    emitter.start("run-9", "orders", [source], [target])
    emitter.complete("run-9", "orders", [source], [target])
    assert [(p, t) for p, t, _ in _Collector.received] == [
        ("/api/v1/lineage", "application/json"),
        ("/api/v1/lineage", "application/json"),
    ]
    assert [b["eventType"] for _, _, b in _Collector.received] == ["START", "COMPLETE"]
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 2  # file too
    assert emitter.errors == []


def test_endpoint_path_is_kept_when_given(endpoint):
    LineageEmitter(url=endpoint + "/custom/lineage").start("r", "job", [], [])
    assert _Collector.received[0][0] == "/custom/lineage"


def test_endpoint_failure_never_raises(endpoint):
    _Collector.status = 500
    emitter = LineageEmitter(url=endpoint)
    emitter.start("r", "job", [], [])  # a lineage outage must not fail the pipeline
    assert len(emitter.errors) == 1 and "500" in emitter.errors[0]
    unreachable = LineageEmitter(url="http://127.0.0.1:9")
    unreachable.complete("r", "job")
    assert len(unreachable.errors) == 1


def test_event_equals_what_the_openlineage_client_serializes():
    """The plain-dict event is the client's RunEvent JSON (only ``_producer`` names crane)."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import error_message_run, processing_engine_run, schema_dataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats
    from openlineage.client.serde import Serde

    import crane

    source, target = _datasets()
    ours = LineageEmitter(namespace="shop").event(
        "FAIL", "run-1", "orders", [source], [target], error="boom"
    )

    def schema(d):
        fields = [
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, ordinal_position=i)
            for i, (n, t) in enumerate(d.fields, start=1)
        ]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

    theirs = Serde.to_dict(
        RunEvent(
            eventType=RunState.FAIL,
            eventTime=ours["eventTime"],
            run=Run(
                runId=ours["run"]["runId"],
                facets={
                    "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                        version=crane.__version__, name="crane"
                    ),
                    "errorMessage": error_message_run.ErrorMessageRunFacet(
                        message="boom", programmingLanguage="python"
                    ),
                },
            ),
            job=Job(namespace="shop", name="orders"),
            inputs=[InputDataset(source.namespace, source.name, facets=schema(source))],
            outputs=[
                OutputDataset(
                    target.namespace,
                    target.name,
                    facets=schema(target),
                    outputFacets={
                        "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=42)
                    },
                )
            ],
            producer=lineage_module.PRODUCER,
        )
    )

    def without_producer(value):
        if isinstance(value, dict):
            return {k: without_producer(v) for k, v in value.items() if k != "_producer"}
        if isinstance(value, list):
            return [without_producer(v) for v in value]
        return value

    assert without_producer(ours) == without_producer(theirs)


def test_writing_events_does_not_import_the_openlineage_client(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from crane.pipelines.lineage import LineageEmitter as E; "
        f"E(file={str(tmp_path / 'e.jsonl')!r}).start('r', 'job', [], []); "
        "print(any(m.startswith('openlineage') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
