"""OpenLineage run events: which run read which tables and wrote which, with their schemas.

Each pipeline run emits START, then COMPLETE or FAIL (the OpenLineage run
cycle), as the JSON the OpenLineage spec defines (consumers such as Marquez, DataHub and
OpenMetadata validate against it), built from plain dicts: the tests check it equals what
openlineage-python's own model classes serialize to, without every run importing them.
Events go to a JSON-lines file by default, and are POSTed to an HTTP endpoint
(``<url>/api/v1/lineage``, the OpenLineage HTTP transport's path) when one is
configured. Lineage is a side channel: a failure to emit is logged and
remembered in ``errors``, never raised into the run.

>>> emitter = LineageEmitter(file=None, url=None)
>>> orders = LineageDataset.from_table("sqlite:///shop.db", "orders", [("id", "INTEGER")])
>>> event = emitter.start("run-1", "orders", [orders], [])
>>> event["eventType"], event["inputs"][0]["facets"]["schema"]["fields"][0]["name"]
('START', 'id')
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crane.config.secrets import mask

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/crane-data/crane"
HTTP_PATH = "/api/v1/lineage"
HTTP_TIMEOUT_SECONDS = 5.0
# The spec versions of the event and of each facet crane writes (openlineage-python 1.54's).
_SPEC = "https://openlineage.io/spec"
RUN_EVENT_SCHEMA = f"{_SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMAS = {
    name: f"{_SPEC}/facets/{version}/{name}.json#/$defs/{name}"
    for name, version in (
        ("ProcessingEngineRunFacet", "1-1-1"),
        ("ErrorMessageRunFacet", "1-0-1"),
        ("SchemaDatasetFacet", "1-2-0"),
        ("OutputStatisticsOutputDatasetFacet", "1-0-2"),
    )
}


@dataclass(frozen=True)
class LineageDataset:
    """A table as OpenLineage names it: ``namespace`` (the system) and ``name`` (the table)."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    rows: int | None = None  # output only: rows written by the run
    bytes: int | None = None

    @classmethod
    def from_table(
        cls,
        url: str,
        table: str,
        schema: pa.Schema | Sequence[tuple[str, str]] | None = None,
        *,
        rows: int | None = None,
        bytes: int | None = None,
    ) -> LineageDataset:
        """Name ``table`` on the system at ``url`` following the OpenLineage naming scheme.

        ``postgresql://u:p@db:5432/shop`` + ``public.orders`` → namespace
        ``postgres://db:5432``, name ``shop.public.orders`` (credentials dropped).
        """
        namespace, prefix = _namespace(url)
        name = f"{prefix}.{table}" if prefix else table
        return cls(namespace, name, _fields(schema), rows, bytes)


def _namespace(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0].lower()
    if scheme in ("duckdb", "sqlite"):
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return f"{scheme}://{path or ':memory:'}", None
    scheme = {"postgresql": "postgres", "mariadb": "mysql"}.get(scheme, scheme)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    database = parts.path.lstrip("/") or None
    return f"{scheme}://{host}{port}", database


def _fields(schema: pa.Schema | Sequence[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    if schema is None:
        return ()
    if hasattr(schema, "names") and hasattr(schema, "types"):
        return tuple(
            (name, str(kind)) for name, kind in zip(schema.names, schema.types, strict=True)
        )
    return tuple((str(name), str(kind)) for name, kind in schema)


def _run_uuid(run_id: str) -> str:
    """OpenLineage requires a UUID run id; other ids map to a stable UUIDv5."""
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"crane:run:{run_id}"))


class LineageEmitter:
    """Writes OpenLineage RunEvents to a JSON-lines ``file`` and/or POSTs them to ``url``."""

    def __init__(
        self, file: Path | str | None = None, url: str | None = None, *, namespace: str = "crane"
    ) -> None:
        self.file = Path(file) if file is not None else None
        self.url = url
        self.namespace = namespace
        self.errors: list[str] = []
        self._lock = threading.Lock()

    # -- the run cycle -------------------------------------------------------------
    def start(
        self,
        run_id: str,
        job: str,
        inputs: Sequence[LineageDataset],
        outputs: Sequence[LineageDataset],
    ) -> dict[str, Any]:
        return self._emit("START", run_id, job, inputs, outputs)

    def complete(
        self,
        run_id: str,
        job: str,
        inputs: Sequence[LineageDataset] = (),
        outputs: Sequence[LineageDataset] = (),
    ) -> dict[str, Any]:
        return self._emit("COMPLETE", run_id, job, inputs, outputs)

    def fail(
        self,
        run_id: str,
        job: str,
        error: BaseException | str,
        inputs: Sequence[LineageDataset] = (),
        outputs: Sequence[LineageDataset] = (),
    ) -> dict[str, Any]:
        return self._emit("FAIL", run_id, job, inputs, outputs, error=mask(str(error)))

    # -- building ------------------------------------------------------------------
    def event(
        self,
        state: str,
        run_id: str,
        job: str,
        inputs: Sequence[LineageDataset],
        outputs: Sequence[LineageDataset],
        error: str | None = None,
    ) -> dict[str, Any]:
        """The RunEvent as the JSON the OpenLineage spec defines, built from plain dicts.

        Importing ``openlineage.client`` costs ~0.65 s of every run's start-up, for JSON
        this small; tests check it equals what the client's own classes serialize to.
        """
        import crane

        run_facets: dict[str, Any] = {
            "processing_engine": _facet(
                "ProcessingEngineRunFacet", version=crane.__version__, name="crane"
            )
        }
        if error is not None:
            run_facets["errorMessage"] = _facet(
                "ErrorMessageRunFacet", message=error, programmingLanguage="python"
            )
        return {
            "eventTime": datetime.now(UTC).isoformat(),
            "eventType": state,
            "inputs": [{**_dataset(d), "facets": _facets(d), "inputFacets": {}} for d in inputs],
            "job": {"facets": {}, "name": job, "namespace": self.namespace},
            "outputs": [
                {**_dataset(d), "facets": _facets(d), "outputFacets": _output_facets(d)}
                for d in outputs
            ],
            "producer": PRODUCER,
            "run": {"facets": run_facets, "runId": _run_uuid(run_id)},
            "schemaURL": RUN_EVENT_SCHEMA,
        }

    def _emit(
        self,
        state: str,
        run_id: str,
        job: str,
        inputs: Sequence[LineageDataset],
        outputs: Sequence[LineageDataset],
        error: str | None = None,
    ) -> dict[str, Any]:
        payload = self.event(state, run_id, job, inputs, outputs, error)
        line = json.dumps(payload, sort_keys=True, default=str)
        if self.file is not None:
            self._write(line)
        if self.url:
            self._post(line)
        return payload

    def _write(self, line: str) -> None:
        assert self.file is not None
        try:
            with self._lock:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                with self.file.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
        except OSError as error:
            self._failed(f"cannot write lineage to {self.file}: {error}")

    def _post(self, line: str) -> None:
        import httpx

        assert self.url is not None
        endpoint = self.url.rstrip("/")
        if not urlsplit(endpoint).path:
            endpoint += HTTP_PATH
        try:
            response = httpx.post(
                endpoint,
                content=line.encode(),
                headers={"Content-Type": "application/json"},
                timeout=HTTP_TIMEOUT_SECONDS,
            )
            response.raise_for_status()
        except httpx.HTTPError as error:
            self._failed(f"cannot send lineage to {endpoint}: {error}")

    def _failed(self, message: str) -> None:
        message = mask(message)
        self.errors.append(message)
        log.warning(message)


def _dataset(dataset: LineageDataset) -> dict[str, Any]:
    return {"name": dataset.name, "namespace": dataset.namespace}


def _facet(kind: str, **values: Any) -> dict[str, Any]:
    """A facet: its fields (None dropped, as the client's serializer does) and schema URL."""
    facet = {k: v for k, v in values.items() if v is not None}
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMAS[kind], **facet}


def _facets(dataset: LineageDataset) -> dict[str, Any]:
    if not dataset.fields:
        return {}
    fields = [
        {"fields": [], "name": name, "ordinal_position": i, "type": kind}
        for i, (name, kind) in enumerate(dataset.fields, start=1)
    ]
    return {"schema": _facet("SchemaDatasetFacet", fields=fields)}


def _output_facets(dataset: LineageDataset) -> dict[str, Any]:
    if dataset.rows is None and dataset.bytes is None:
        return {}
    facet = _facet("OutputStatisticsOutputDatasetFacet", rowCount=dataset.rows, size=dataset.bytes)
    return {"outputStatistics": facet}
