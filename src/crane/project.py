"""A crane project on disk: ``crane.yml``, ``.env`` and the pipelines under ``pipelines/``.

`Project.load` is the one place that turns files and the environment into
specs and connection URLs, so the CLI, the scheduler and a user's Python code
all see the same project. Precedence is explicit and recorded for
``crane config show``: CLI > environment > ``crane.yml`` > built-in default.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from crane.config import secrets
from crane.config.env import Environment, conventional_connections, conventional_variables
from crane.config.loader import (
    Document,
    SpecError,
    apply_defaults,
    error_location,
    error_reason,
    load_pipeline_document,
    load_project_document,
    read_document,
)
from crane.config.spec import (
    ConnectionSpec,
    LineageSpec,
    PipelineDefaults,
    PipelineSpec,
    ProjectSpec,
)
from crane.connectors.base import ConnectionURL
from crane.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from crane.console import Console
    from crane.pipelines.lineage import LineageEmitter

PROJECT_FILE = "crane.yml"
SUCCESS_STATES = ("success", "succeeded", "ok", "completed", "complete", "skipped")
PIPELINE_DIR = "pipelines"
_FILE_SCHEMES = ("duckdb", "sqlite")
_ENV_OVERRIDES = {"warehouse": "CRANE_WAREHOUSE", "lineage.url": "OPENLINEAGE_URL"}
_ENV_PARTS = {"type": "TYPE", "host": "HOST", "port": "PORT", "database": "NAME", "user": "USER"}
_ENV_DEFAULTS = {"defaults.batch_size": "BATCH_SIZE", "defaults.max_retries": "MAX_RETRIES"}
_BAD_URL = "not a valid connection URL (what follows 'host:' is not a port number)"
_BAD_URL_HINT = (
    "percent-encode '/', '?', '#' and '%' in a user name or password (%2F, %3F, %23, %25), "
    "or leave the password out of the URL and give it beside it: password: ${VAR}"
)


@dataclass(frozen=True)
class Setting:
    """One effective setting and where it came from (``cli``, ``env X``, ``crane.yml:7``, …)."""

    key: str
    value: Any
    origin: str


@dataclass(frozen=True)
class Outcome:
    """What became of one pipeline in `Project.run`: its run result, or the error it raised."""

    pipeline: str
    result: Any | None
    error: BaseException | None

    @property
    def ok(self) -> bool:
        status = str(getattr(self.result, "status", "")).lower()
        return self.error is None and status in SUCCESS_STATES

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (secrets masked): the run result's fields, or the error."""
        record: dict[str, Any] = {"pipeline": self.pipeline}
        if self.result is not None:
            record.update(_as_dict(self.result))
        if self.error is not None:
            record.update(status="failed", error=str(self.error))
        record["ok"] = self.ok
        return {k: secrets.mask(v) if isinstance(v, str) else v for k, v in record.items()}


def _as_dict(result: Any) -> dict[str, Any]:
    import dataclasses

    if callable(getattr(result, "to_dict", None)):
        return dict(result.to_dict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, Mapping):
        return dict(result)
    return dict(vars(result))


@dataclass
class Project:
    """A loaded project. Build it with `Project.load`."""

    root: Path
    spec: ProjectSpec
    env: Environment
    pipelines: dict[str, PipelineSpec] = field(default_factory=dict)
    pipeline_files: dict[str, str] = field(default_factory=dict)
    settings: list[Setting] = field(default_factory=list)

    # -- loading ---------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        env: Environment | None = None,
        warehouse_only: bool = False,
    ) -> Project:
        """Find ``crane.yml`` in ``path`` (default: the working directory) or a parent; load all.

        ``overrides`` are CLI values keyed like settings: ``warehouse``,
        ``defaults.batch_size``, ``defaults.max_retries``, ``lineage.url``.
        ``warehouse_only`` is for commands that read only the warehouse (``crane runs``): no
        pipelines are loaded, and an unset ``${VAR}`` fails only where the warehouse uses it.
        """
        root = find_root(Path(path) if path is not None else Path.cwd())
        env = env if env is not None else Environment.load(root)
        secrets.register_env(env)
        doc = read_document(root / PROJECT_FILE, root, env, defer_unset=warehouse_only)
        origins: dict[str, str] = {}
        overlay = _overlay(doc, env, dict(overrides or {}), origins)
        spec = load_project_document(doc, overlay)
        project = cls(root=root, spec=spec, env=env)
        project._register_secrets()
        project._check_warehouse(doc, origins.get("warehouse"))
        if warehouse_only:
            project._check_warehouse_values(doc, origins.get("warehouse"))
            return project
        project._check_urls(doc, origins.get("warehouse"))
        project.settings = _settings(project, doc, origins, explicit=path is not None)
        project._load_pipelines(doc)
        project._check_types(doc)  # after the pipelines: a Python file may register a connector
        return project

    def _register_secrets(self) -> None:
        for conn in self.spec.connections.values():
            if conn.password is not None:
                secrets.register(conn.password.get_secret_value())
            secrets.register_url(connection_url(conn))  # also secret-named options
        secrets.register_url(self.spec.warehouse)

    def _check_warehouse(self, doc: Document, origin: str | None) -> None:
        """The warehouse names a connection; an error names where the name was given."""
        name = self.spec.warehouse
        if "://" in name or name in self.spec.connections:
            return
        raise _warehouse_error(doc, origin, _unknown("connection", name, self.spec.connections))

    def _check_warehouse_values(self, doc: Document, origin: str | None) -> None:
        """For a warehouse-only load: the values the warehouse is built from were all
        interpolated, and its URL parses."""
        name = self.spec.warehouse
        mine: list[tuple[str, ...]] = [] if origin else [("warehouse",)]  # origin: env or CLI
        if "://" not in name:
            mine.append(("connections", name))
        for path, error in (doc.unset or {}).items():
            if any(path[: len(prefix)] == prefix for prefix in mine):
                raise doc.fail(path, error.detail, error.hint)
        if "://" in name and not _parses(name):
            raise _warehouse_error(doc, origin, _BAD_URL, _BAD_URL_HINT)
        if "://" not in name and not _parses(self.warehouse_url):
            raise doc.fail(("connections", name, "url"), _BAD_URL, _BAD_URL_HINT)

    def _check_urls(self, doc: Document, warehouse_origin: str | None) -> None:
        """Every URL must parse before anything shows it. A password with '/', '?' or '#'
        pasted into a URL ends its host part early, and urllib's complaint ("Port could
        not be cast to integer value as 'hunter2'") quotes the password."""
        for name, conn in self.spec.connections.items():
            if conn.url and not _parses(conn.url):
                raise doc.fail(("connections", name, "url"), _BAD_URL, _BAD_URL_HINT)
        if "://" in self.spec.warehouse and not _parses(self.spec.warehouse):
            raise _warehouse_error(doc, warehouse_origin, _BAD_URL, _BAD_URL_HINT)

    def _check_types(self, doc: Document) -> None:
        """The connections pipelines use name known connectors, so a misspelt type fails
        here, naming where it was set, instead of in every pipeline at run time. (A
        connection nothing uses yet, e.g. for a connector still to come, is left alone.)"""
        from crane.connectors.base import connectors

        known = connectors.names()
        from_env = conventional_connections(self.env)
        used = set(from_env) | {self.spec.warehouse}
        for spec in self.pipelines.values():
            used |= {spec.source.connection, spec.target.connection or ""}
        for name, conn in sorted(self.spec.connections.items()):
            if name not in used:
                continue
            scheme = ConnectionURL.parse(connection_url(conn)).scheme
            if scheme in known:
                continue
            reason = _unknown("connection type", scheme, known)
            if name in from_env:
                where = f"environment variable {conventional_variables(name)[0]}"
                raise SpecError([(where, None, None, reason)])
            raise doc.fail(("connections", name, "url" if conn.url else "type"), reason)

    def _load_pipelines(self, project_doc: Document) -> None:
        defaults = self.spec.defaults.model_dump()
        for name, spec in self.spec.pipelines.items():
            self._add(spec.model_copy(update={"name": name}), PROJECT_FILE, project_doc, defaults)
        folder = self.root / PIPELINE_DIR
        files = (
            sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.py")) if folder.is_dir() else []
        )
        for file in files:
            if file.name.startswith(("_", ".")):
                continue
            if file.suffix == ".py":
                for spec in load_python_pipelines(file, self.root):
                    self._add(spec, _display(file, self.root), None, defaults)
            elif file.suffix in (".yml", ".yaml"):
                doc = read_document(file, self.root, self.env)
                for spec in load_pipeline_document(doc, file.stem):
                    self._add(spec, doc.display, doc, defaults)

    def _add(
        self, spec: PipelineSpec, display: str, doc: Document | None, defaults: dict[str, Any]
    ) -> None:
        if spec.name in self.pipelines:
            raise ConfigError(
                f"pipeline {spec.name!r} is defined twice: in {self.pipeline_files[spec.name]} "
                f"and in {display}",
                file=display,
                pipeline=spec.name,
            )
        for path, conn in (
            (("source", "connection"), spec.source.connection),
            (("target", "connection"), spec.target.connection),
        ):
            if conn is not None and conn not in self.spec.connections:
                reason = _unknown("connection", conn, self.spec.connections)
                prefix = _pipeline_prefix(doc, spec.name)
                if doc is not None:
                    raise doc.fail(prefix + path, reason)
                raise SpecError([(display, None, ".".join(path), reason)])
        self.pipelines[spec.name] = apply_defaults(spec, defaults)
        self.pipeline_files[spec.name] = display

    # -- lookups ---------------------------------------------------------------
    def pipeline(self, name: str) -> PipelineSpec:
        if name not in self.pipelines:
            close = difflib.get_close_matches(name, list(self.pipelines), n=3)
            raise UnknownNameError(
                f"unknown pipeline {name!r}; known: {', '.join(sorted(self.pipelines)) or 'none'}",
                hint=f"did you mean {', '.join(repr(c) for c in close)}?" if close else None,
            )
        return self.pipelines[name]

    def select(self, names: Iterable[str], *, all_: bool = False) -> list[PipelineSpec]:
        """The pipelines to run: the named ones in the order given, or all of them by name."""
        if all_:
            return [self.pipelines[n] for n in sorted(self.pipelines)]
        return [self.pipeline(n) for n in names]

    def connection_url(self, name: str) -> str:
        """The URL of connection ``name``, with file paths made absolute against the project."""
        if name not in self.spec.connections:
            raise UnknownNameError(_unknown("connection", name, self.spec.connections))
        return self.resolve_url(connection_url(self.spec.connections[name]))

    def resolve_url(self, url: str) -> str:
        """Make a relative ``duckdb:///x.duckdb`` / ``sqlite:///x.db`` relative to the project."""
        return resolve_file_url(url, self.root)

    @property
    def warehouse_url(self) -> str:
        name = self.spec.warehouse
        return self.connection_url(name) if "://" not in name else self.resolve_url(name)

    def source_url(self, spec: PipelineSpec) -> str:
        return self.connection_url(spec.source.connection)

    def target_url(self, spec: PipelineSpec) -> str:
        name = spec.target.connection
        return self.connection_url(name) if name else self.warehouse_url

    def run(
        self,
        names: Iterable[str] = (),
        *,
        all_: bool = False,
        full_refresh: bool = False,
        wait: bool = False,
        console: Console | None = None,
    ) -> list[Outcome]:
        """Run pipelines one after another; a failure is recorded and the next one still runs."""
        from crane.pipelines.runner import run_pipeline

        lineage = self.lineage_emitter()
        outcomes = []
        for spec in self.select(names, all_=all_):
            try:
                result = run_pipeline(
                    spec,
                    source_url=self.source_url(spec),
                    target_url=self.target_url(spec),
                    full_refresh=full_refresh,
                    wait=wait,
                    console=console,
                    lineage=lineage,
                )
            except Exception as error:  # reported per pipeline; the CLI decides the exit code
                outcomes.append(Outcome(spec.name, None, error))
            else:
                outcomes.append(Outcome(spec.name, result, None))
        return outcomes

    def lineage_emitter(self) -> LineageEmitter:
        """Where this project's OpenLineage events go (a JSON-lines file and/or an endpoint)."""
        from crane.pipelines.lineage import LineageEmitter

        lineage = self.spec.lineage
        file = (self.root / lineage.file) if lineage.file else None
        return LineageEmitter(file=file, url=lineage.url, namespace=self.spec.name)


def _parses(url: str) -> bool:
    try:
        ConnectionURL.parse(url)
    except ValueError:
        return False
    return True


def _warehouse_error(
    doc: Document, origin: str | None, reason: str, hint: str | None = None
) -> SpecError:
    """An error about the warehouse setting, named where it was given (CLI, env or file)."""
    variable = _ENV_OVERRIDES["warehouse"]
    if origin == "cli":
        return SpecError([("command line --warehouse", None, None, reason)], hint=hint)
    if origin and origin.endswith(variable):
        return SpecError([(f"environment variable {variable}", None, None, reason)], hint=hint)
    return doc.fail(("warehouse",), reason, hint)


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` that holds ``crane.yml``."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {PROJECT_FILE} in {start} or any parent directory",
        hint="run `crane init` to create a project, or pass --project DIR",
    )


def connection_url(conn: ConnectionSpec) -> str:
    """A URL for a connection given as a URL or as parts (password URL-encoded)."""
    if conn.url:
        if conn.password is None:
            return conn.url
        return _with_password(conn.url, conn.password.get_secret_value())
    scheme = conn.type or "postgresql"
    if scheme in _FILE_SCHEMES:
        return f"{scheme}:///{conn.database or ':memory:'}"
    auth = ""
    if conn.user:
        auth = quote(conn.user, safe="")
        if conn.password is not None:
            auth += ":" + quote(conn.password.get_secret_value(), safe="")
        auth += "@"
    host = conn.host or "localhost"
    port = f":{conn.port}" if conn.port else ""
    query = f"?{urlencode(conn.options)}" if conn.options else ""
    return f"{scheme}://{auth}{host}{port}/{quote(conn.database or '', safe='')}{query}"


def _with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) after its user name."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def resolve_file_url(url: str, root: Path) -> str:
    """``duckdb:///warehouse.duckdb`` → ``duckdb:////abs/project/warehouse.duckdb``."""
    parsed = ConnectionURL.parse(url)
    if parsed.scheme not in _FILE_SCHEMES or not parsed.database:
        return url
    if parsed.database == ":memory:" or Path(parsed.database).is_absolute():
        return url
    query = url.partition("?")[2]
    resolved = f"{url.split('://', 1)[0]}:///{(root / parsed.database).resolve()}"
    return f"{resolved}?{query}" if query else resolved


def load_python_pipelines(path: Path, root: Path) -> list[PipelineSpec]:
    """Run a Python pipeline file and collect ``pipeline`` and/or ``pipelines``.

    The module is executed under a private name, so its ``if __name__ ==
    "__main__":`` block (used to run the file directly) does not run. Files
    whose names start with ``_`` are not pipelines: keep shared helpers there.
    """
    display = _display(path, root)
    module = run_python_file(path, display, "pipelines")
    found: list[Any] = []
    if hasattr(module, "pipeline"):
        found.append(module.pipeline)
    found.extend(getattr(module, "pipelines", None) or [])
    if not found:
        raise ConfigError(
            "a Python pipeline file must define `pipeline = PipelineSpec(...)` "
            "or a `pipelines` list",
            file=display,
        )
    for item in found:
        if not isinstance(item, PipelineSpec):
            raise ConfigError(f"expected a PipelineSpec, got {type(item).__name__}", file=display)
    return found


def run_python_file(path: Path, display: str, kind: str) -> ModuleType:
    """Execute a project's Python file (a pipeline or model file) as a module of its own.

    Under a private name, so its ``if __name__ == "__main__":`` block does not run;
    helper modules beside it (``pipelines/_common.py``) are importable while it runs.
    An error becomes a :class:`SpecError` naming the file and the line in it.
    """
    module_name = f"_crane_{kind}_{abs(hash(str(path)))}_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError([(display, None, None, "cannot import this file")])
    module = importlib.util.module_from_spec(loader_spec)
    sys.path.insert(0, str(path.parent))
    try:
        loader_spec.loader.exec_module(module)
    except Exception as error:
        raise _python_error(error, path, display) from None
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(path.parent))
    return module


def _python_error(error: Exception, path: Path, display: str) -> ConfigError:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    line = frames[-1].lineno if frames else None
    if isinstance(error, SyntaxError):  # raised while compiling: no frame of the file yet
        return SpecError([(display, error.lineno, None, f"SyntaxError: {error.msg}")])
    if isinstance(error, ValidationError):
        from crane.config import spec as spec_models

        model = getattr(spec_models, error.title, None)  # the model whose call failed
        problems = []
        for err in error.errors():
            loc = ".".join(str(k) for k in error_location(err)) or None
            problems.append((display, line, loc, error_reason(model, err)))
        return SpecError(problems)
    if isinstance(error, ConfigError):
        return SpecError([(display, line, None, error.detail)])
    return SpecError([(display, line, None, f"{type(error).__name__}: {error}")])


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _pipeline_prefix(doc: Document | None, name: str) -> tuple[str | int, ...]:
    """Where pipeline ``name`` sits inside its document (root, list item, or crane.yml key)."""
    if doc is None or not isinstance(doc.data, dict):
        return ()
    if isinstance(doc.data.get("pipelines"), list):
        for i, item in enumerate(doc.data["pipelines"]):
            if isinstance(item, dict) and item.get("name") == name:
                return ("pipelines", i)
    if isinstance(doc.data.get("pipelines"), dict) and name in doc.data["pipelines"]:
        return ("pipelines", name)
    return ()


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=3)
    text = f"unknown {kind} {name!r}; known: {', '.join(names) or 'none'}"
    return text + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else "")


# -- precedence: CLI > environment > crane.yml > default ---------------------------------
def _overlay(
    doc: Document, env: Environment, cli: dict[str, Any], origins: dict[str, str]
) -> dict[str, Any]:
    """Top-level keys that replace crane.yml's, from the environment and the CLI."""
    data = doc.data if isinstance(doc.data, dict) else {}
    overlay: dict[str, Any] = {}
    conventional = conventional_connections(env)
    if conventional:
        connections = dict(data.get("connections") or {})
        for name, raw in conventional.items():
            connections[name] = _env_connection(name, raw)
            used = [v for v in conventional_variables(name) if env.get(v)]
            origins[f"connections.{name}"] = _env_origin(env, used)
        overlay["connections"] = connections
    if "target" in conventional:
        overlay["warehouse"] = "target"
        origins["warehouse"] = origins["connections.target"]
    for key, var in {**_ENV_OVERRIDES, **_ENV_DEFAULTS}.items():
        if env.get(var):
            _set(overlay, data, key, _checked(key, env[var], f"environment variable {var}"))
            origins[key] = _env_origin(env, [var])
    for key, value in cli.items():
        if value is not None:
            _set(overlay, data, key, _checked(key, value, f"command line {key}"))
            origins[key] = "cli"
    return overlay


def _env_connection(name: str, raw: dict[str, Any]) -> ConnectionSpec:
    """Validate a SOURCE_DB_*/TARGET_DB_* connection; errors name the variable at fault."""
    try:
        return ConnectionSpec.model_validate(raw)
    except ValidationError as error:
        prefix = conventional_variables(name)[0].removesuffix("TYPE")
        problems = []
        for err in error.errors():
            part = _ENV_PARTS.get(str(err["loc"][0]) if err["loc"] else "", "HOST")
            problems.append((f"environment variable {prefix}{part}", None, None, str(err["msg"])))
        raise SpecError(problems) from None


def _checked(key: str, value: Any, where: str) -> Any:
    """Validate one override of a crane.yml setting where it came from (env or CLI)."""
    section, _, name = key.partition(".")
    models: dict[str, type[BaseModel]] = {"defaults": PipelineDefaults, "lineage": LineageSpec}
    model = models.get(section)
    if model is None or not name:
        return value
    try:
        model.model_validate({name: value})
    except ValidationError as error:
        raise SpecError([(where, None, None, str(e["msg"])) for e in error.errors()]) from None
    return value


def _set(overlay: dict[str, Any], data: dict[str, Any], key: str, value: Any) -> None:
    head, _, tail = key.partition(".")
    if not tail:
        overlay[head] = value
        return
    section = overlay.setdefault(head, dict(data.get(head) or {}))
    section[tail] = value


def _env_origin(env: Environment, names: list[str]) -> str:
    return ", ".join(f"{env.origins.get(n, 'env')} {n}" for n in names)


def _settings(
    project: Project, doc: Document, origins: dict[str, str], *, explicit: bool
) -> list[Setting]:
    spec = project.spec

    def origin(key: str) -> str:
        if key in origins:
            return origins[key]
        path = tuple(key.split("."))
        if path not in doc.lines:
            return "default"
        refs = sorted({r for p, rs in doc.refs.items() if p[: len(path)] == path for r in rs})
        via = [
            f"{project.env.origins[r]} {r}" if r in project.env else f"default of {r}" for r in refs
        ]
        return f"{doc.display}:{doc.lines[path]}" + (f" via {', '.join(via)}" if via else "")

    rows = [
        Setting("project", str(project.root), "cli" if explicit else "working directory"),
        Setting("name", spec.name, origin("name")),
        Setting("warehouse", project.warehouse_url, origin("warehouse")),
    ]
    for name in sorted(spec.connections):
        key = f"connections.{name}"
        rows.append(Setting(key, project.connection_url(name), origin(key)))
    for field_name in ("batch_size", "max_retries"):
        value = getattr(spec.defaults, field_name)
        if value is None:
            value = PipelineSpec.model_fields[field_name].default
        rows.append(Setting(f"defaults.{field_name}", value, origin(f"defaults.{field_name}")))
    rows.append(Setting("lineage.file", spec.lineage.file, origin("lineage.file")))
    rows.append(Setting("lineage.url", spec.lineage.url, origin("lineage.url")))
    return rows
