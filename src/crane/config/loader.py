"""YAML files → spec objects, with errors that point at file, line and field.

PyYAML's composer keeps the position of every node, so the loader builds the
plain data *and* a map from each key path to its line. When pydantic rejects
the data, each error location (``('load', 'strategy')``) is looked up in that
map and reported as ``pipelines/orders.yml, line 7, field load.strategy: …``.
``${VAR}`` references are interpolated per scalar, after parsing, so a secret
containing YAML syntax cannot change the structure of the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from crane.config.env import Environment
from crane.config.spec import PipelineSpec, ProjectSpec
from crane.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Key = str | int
KeyPath = tuple[Key, ...]

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# pydantic appends the tried type to the location of a union member; not a field
_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "is-instance"}


class SpecError(ConfigError):
    """A spec file is invalid; names every problem as ``file, line N, field a.b: reason``."""

    def __init__(
        self,
        problems: Sequence[tuple[str, int | None, str | None, str]],
        *,
        hint: str | None = None,
    ) -> None:
        self.problems = list(problems)
        file, line, fld, _ = self.problems[0]
        super().__init__(self.problems[0][3], file=file, line=line, field=fld, hint=hint)

    def _render(self) -> str:
        text = "\n".join(_problem_line(*problem) for problem in self.problems)
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


def _problem_line(file: str, line: int | None, fld: str | None, reason: str) -> str:
    where = [file] + ([f"line {line}"] if line else []) + ([f"field {fld}"] if fld else [])
    return f"{', '.join(where)}: {reason}"


@dataclass
class Document:
    """One parsed YAML file: its data, and where each key path came from."""

    display: str  # the path shown in messages, relative to the project
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # key path -> the environment variables its scalar referred to
    refs: dict[KeyPath, list[str]] = field(default_factory=dict)
    # with ``defer_unset``: key path -> why its value could not be interpolated (the value
    # keeps its ``${VAR}`` text); a command raises it only if it needs that value
    unset: dict[KeyPath, ConfigError] | None = None

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that appears in the file."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def fail(self, path: KeyPath, reason: str, hint: str | None = None) -> SpecError:
        problem = (self.display, self.line_of(path), _dotted(path) or None, reason)
        return SpecError([problem], hint=hint)


def parse_yaml(text: str, display: str, env: Environment, *, defer_unset: bool = False) -> Document:
    """Parse ``text`` into a `Document`, interpolating ``${VAR}`` in string scalars.

    ``defer_unset`` records a value naming an unset variable (`Document.unset`) instead of
    failing: a command that needs only part of the file (``crane runs``: the warehouse)
    must not require the secrets of every source.
    """
    import yaml

    # libyaml's loader when present: several times faster on large DAG/model files
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader_class)
    except yaml.YAMLError as error:
        line, reason = _yaml_problem(error, text)
        raise SpecError([(display, line, None, f"invalid YAML: {reason}")]) from None
    doc = Document(display, None, unset={} if defer_unset else None)
    doc.lines[()] = 1
    if root is not None:
        doc.data = _build(root, (), doc, env, yaml.SafeLoader(""))
    return doc


# constructs PyYAML reports only where the file ends or the next key begins
_UNCLOSED = ("a quoted scalar", "a flow sequence", "a flow mapping")


def _yaml_problem(error: Any, text: str) -> tuple[int | None, str]:
    """The line to look at for a YAML syntax error, and the problem in plain words.

    PyYAML names the line where it *noticed* the problem; for an unclosed quote or
    bracket that is far below the mistake, so the line the construct began on wins.
    """
    mark, start = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    line = mark.line + 1 if mark is not None else None
    context = str(getattr(error, "context", None) or "")
    construct = next((c for c in _UNCLOSED if context.endswith(c)), None)
    if construct and start is not None and line is not None and start.line + 1 < line:
        reason = f"{construct} starts here and is not closed ({problem} at line {line})"
        return start.line + 1, reason
    lines = text.splitlines()
    if line is not None and line <= len(lines) and "\t" in lines[line - 1]:
        problem += " (a tab: YAML indents with spaces)"
    return line, problem


def _build(node: Any, path: KeyPath, doc: Document, env: Environment, loader: Any) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node))
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            if key in result:  # PyYAML would silently keep the last one
                raise doc.fail(path + (key,), f"duplicate key {key!r}")
            result[key] = _build(value_node, path + (key,), doc, env, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_build(item, path + (index,), doc, env, loader))
        return items
    if node.tag == _TIMESTAMP_TAG:
        return node.value  # keep dates as written: a watermark is compared as text by the source
    value = loader.construct_object(node)
    if isinstance(value, str) and "${" in value:
        doc.refs[path] = env.references(value)
        try:
            value = env.interpolate(value)
        except ConfigError as error:
            if doc.unset is None:
                raise doc.fail(path, error.detail, error.hint) from None
            doc.unset[path] = error
    return value


def validate(model: type[M], data: Any, doc: Document, prefix: KeyPath = ()) -> M:
    """``model.model_validate(data)``, with errors mapped to the file's lines."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SpecError([_problem(model, doc, prefix, e) for e in error.errors()]) from None


def _problem(
    model: type[BaseModel], doc: Document, prefix: KeyPath, err: Any
) -> tuple[str, int | None, str | None, str]:
    loc = error_location(err)
    path = prefix + loc
    return (doc.display, doc.line_of(path), _dotted(path) or None, error_reason(model, err))


def error_location(err: Any) -> KeyPath:
    """A pydantic error's location as spec keys (without the union member tags)."""
    return tuple(k for k in err["loc"] if not _is_type_tag(k))


def error_reason(model: type[BaseModel] | None, err: Any) -> str:
    """A pydantic error in the words a spec author needs, with "did you mean" for names."""
    loc = error_location(err)
    reason = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and loc:
        known = _field_names(model, loc[:-1]) if model is not None else []
        reason = f"unknown field {loc[-1]!r}" + _did_you_mean(str(loc[-1]), known)
    elif err["type"] == "literal_error" and isinstance(err.get("input"), str):
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        reason += _did_you_mean(err["input"], expected)
    return reason


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (aliases as written in YAML), for suggestions."""
    current: Any = model
    for key in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = current.model_fields
            name = next((n for n, f in fields.items() if key in (n, f.alias)), None)
            current = _unwrap(fields[name].annotation) if name else None
        elif get_origin(current) in (dict, list):
            current = _unwrap(get_args(current)[-1])
        else:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``: the part of an optional field that has fields of its own."""
    if get_origin(annotation) in (Union, UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return inner[0] if len(inner) == 1 else None
    return annotation


def _is_type_tag(key: Any) -> bool:
    return isinstance(key, str) and (key in _TYPE_TAGS or "[" in key)


def _dotted(path: KeyPath) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def read_document(
    path: Path, root: Path, env: Environment, *, defer_unset: bool = False
) -> Document:
    """Read and parse one YAML file; ``root`` makes the displayed path relative."""
    try:
        display = str(path.relative_to(root))
    except ValueError:
        display = str(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {display}: {error.strerror}", file=display) from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows editors is no key
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SpecError([(display, line, None, "not UTF-8 text")]) from None
    return parse_yaml(text, display, env, defer_unset=defer_unset)


def load_project_document(doc: Document, overlay: Mapping[str, Any] | None = None) -> ProjectSpec:
    """Validate a ``crane.yml`` document (``overlay`` replaces top-level keys: env, CLI)."""
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.fail((), "crane.yml must be a mapping of settings")
    data = {**data, **(overlay or {})}
    inline = data.get("pipelines")
    if isinstance(inline, dict):  # pipelines written in crane.yml are named by their key
        data["pipelines"] = {
            k: {"name": k, **v} if isinstance(v, dict) else v for k, v in inline.items()
        }
    return validate(ProjectSpec, data, doc)


def load_pipeline_document(doc: Document, stem: str) -> list[PipelineSpec]:
    """A pipeline file holds one pipeline (named after the file by default) or ``pipelines:``."""
    data = doc.data
    if isinstance(data, dict) and set(data) == {"pipelines"}:
        items = data["pipelines"]
        if not isinstance(items, list):
            raise doc.fail(("pipelines",), "'pipelines' must be a list of pipelines")
        return [validate(PipelineSpec, item, doc, ("pipelines", i)) for i, item in enumerate(items)]
    if not isinstance(data, dict):
        raise doc.fail((), "a pipeline file must be a mapping (one pipeline) or 'pipelines:' list")
    return [validate(PipelineSpec, {"name": stem, **data}, doc)]


def apply_defaults(spec: PipelineSpec, defaults: Mapping[str, Any]) -> PipelineSpec:
    """Fill the fields a pipeline did not set itself from project defaults.

    Uses pydantic's ``model_fields_set``, so YAML and Python pipelines behave
    the same: an explicit ``batch_size: 100000`` is kept even if it equals the
    built-in default.
    """
    update = {k: v for k, v in defaults.items() if v is not None and k not in spec.model_fields_set}
    if not update:
        return spec
    return PipelineSpec.model_validate({**spec.model_dump(by_alias=True), **update})


def load_pipeline_file(path: Path, root: Path, env: Environment) -> list[PipelineSpec]:
    """Load the pipelines of one YAML file."""
    return load_pipeline_document(read_document(path, root, env), path.stem)
