"""The spec models: what a crane project, connection and pipeline *is*.

YAML files and the Python API both build these objects, so there is exactly one
definition of each concept. Anything not given here has a documented default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_WAREHOUSE = "duckdb:///warehouse.duckdb"


class Spec(BaseModel):
    """Base of every spec: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectionSpec(Spec):
    """A system crane reads from or writes to.

    Either a full ``url`` (``postgresql://user@host:5432/db``) or its parts; the
    password is a secret and is masked wherever the spec is shown. A ``password``
    beside a ``url`` goes into it percent-encoded, so ``password: ${PW}`` keeps a
    secret with ``/``, ``?`` or ``#`` from breaking the URL.
    """

    url: str | None = None
    type: str | None = None  # URL scheme: duckdb, postgresql, mysql, mariadb, sqlite
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _url_or_parts(self) -> ConnectionSpec:
        if not self.url and not self.type:
            raise ValueError("a connection needs either 'url' or 'type'")
        if self.url and self.password is not None and _password_in(self.url):
            raise ValueError("the password is given twice, in 'url' and in 'password'; keep one")
        return self


def _password_in(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password is not None
    except ValueError:  # an unparseable URL is reported where URLs are checked
        return False


class SourceSpec(Spec):
    """Where rows come from: a table (optionally schema-qualified) or a query."""

    connection: str = "source"
    table: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    query: str | None = None
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> SourceSpec:
        if bool(self.table) == bool(self.query):
            raise ValueError("a source needs exactly one of 'table' or 'query'")
        return self


class TargetSpec(Spec):
    """Where rows land. ``connection`` defaults to the project warehouse."""

    connection: str | None = None
    table: str
    schema_: str | None = Field(default=None, alias="schema")


class ExtractSpec(Spec):
    """How rows are selected from the source on each run."""

    strategy: Literal["full", "incremental", "partitioned"] = "full"
    cursor: str | None = None
    # first lower bound of an incremental pipeline; None means "from the beginning"
    initial_value: str | int | None = None
    # re-read this much before the saved watermark (duration like "2h" or an integer)
    lookback: str | int | None = None
    # safety margin below "now" for the upper bound when the source cannot tell
    # which transactions are still open (duration like "5s")
    lag: str | None = None
    # rows whose cursor is NULL: loaded by full loads only ("skip"), or every run ("always")
    null_cursor: Literal["skip", "always"] = "skip"
    partition_column: str | None = None
    partitions: int = Field(default=4, ge=1)
    workers: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _needs_columns(self) -> ExtractSpec:
        if self.strategy == "incremental" and not self.cursor:
            raise ValueError("incremental extraction needs a 'cursor' column")
        if self.strategy == "partitioned" and not self.partition_column:
            raise ValueError("partitioned extraction needs a 'partition_column'")
        return self


class LoadSpec(Spec):
    """How extracted rows are published into the target table."""

    strategy: Literal["append", "replace", "merge", "delete_insert"] = "append"
    primary_key: list[str] = Field(default_factory=list)
    # a created target gets the key as a PRIMARY KEY constraint: true, false, or None for
    # the target's own default (yes on PostgreSQL/MySQL, no on DuckDB, where the index
    # costs more than it guards: crane's loads keep keys unique themselves)
    key_constraint: bool | None = None
    # full extracts only: what to do with target rows missing from the source
    hard_deletes: Literal["ignore", "delete", "soft"] = "ignore"
    soft_delete_column: str = "_crane_deleted_at"
    # an empty full extract with hard deletes is refused unless this says it is real
    allow_empty_extract: bool = False
    on_schema_change: Literal["evolve", "freeze", "discard"] = "evolve"
    # several rows with one key in a batch: fail the run, quarantine all but the last, or keep last
    duplicate_keys: Literal["fail", "quarantine", "keep_last"] = "fail"
    max_quarantine_ratio: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _needs_key(self) -> LoadSpec:
        if self.strategy in ("merge", "delete_insert") and not self.primary_key:
            raise ValueError(f"load strategy {self.strategy!r} needs a 'primary_key'")
        return self


class ColumnContract(Spec):
    """A declared column: its type and whether it may be NULL."""

    type: str | None = None
    nullable: bool = True


class PipelineSpec(Spec):
    """One extract–transform–load job from a source table or query to a target table."""

    name: str
    description: str | None = None
    source: SourceSpec
    target: TargetSpec
    extract: ExtractSpec = Field(default_factory=ExtractSpec)
    load: LoadSpec = Field(default_factory=LoadSpec)
    # a SELECT over the relation `source` (the extracted batch), run inside the target engine
    transform: str | None = None
    columns: dict[str, ColumnContract] = Field(default_factory=dict)
    batch_size: int = Field(default=100_000, ge=1)
    max_retries: int = Field(default=3, ge=0)


class LineageSpec(Spec):
    """Where OpenLineage run events go: a JSON-lines file, or an HTTP endpoint."""

    file: str | None = "lineage.jsonl"
    url: str | None = None


class PipelineDefaults(Spec):
    """Project-wide values for pipelines that do not set their own (env BATCH_SIZE/MAX_RETRIES)."""

    batch_size: int | None = Field(default=None, ge=1)
    max_retries: int | None = Field(default=None, ge=0)


class ProjectSpec(Spec):
    """A crane project: its connections, its warehouse and its pipelines."""

    name: str = "crane-project"
    warehouse: str = DEFAULT_WAREHOUSE  # a connection name or URL
    connections: dict[str, ConnectionSpec] = Field(default_factory=dict)
    defaults: PipelineDefaults = Field(default_factory=PipelineDefaults)
    pipelines: dict[str, PipelineSpec] = Field(default_factory=dict)
    lineage: LineageSpec = Field(default_factory=LineageSpec)
