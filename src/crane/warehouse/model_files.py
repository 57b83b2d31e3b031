"""Reading a project's ``models/`` into one `Model` that remembers where each object came from.

YAML files and Python files under ``models/`` are merged into one
`crane.warehouse.spec.Model`. Each object keeps its `Origin` (the file's document
and the key path in it), so `crane.warehouse.validate` can name file, line and
field for every problem; a Python-built model gets origins that name the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crane.warehouse.spec import Model

MODEL_DIR = "models"


@dataclass
class Origin:
    """Where a spec object was declared: its file's document and its key path there."""

    document: Any  # crane.config.loader.Document, or None for Python-built objects
    path: tuple[str | int, ...]
    file: str | None = None  # the Python file that built the object, if any


@dataclass
class LoadedModel:
    """A merged `Model` plus the origin of each object, keyed by (kind, index in the model)."""

    model: Model
    origins: dict[tuple[str, int], Origin] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def origin(self, kind: str, index: int) -> Origin:
        return self.origins.get((kind, index), Origin(None, (kind, index)))


def load_models(root: Path, env: Any = None) -> LoadedModel:
    """Read ``root/models/*.yml`` and ``*.py`` (sorted) into one `Model`; errors name file,
    line and field."""
    from crane.config.env import Environment
    from crane.config.loader import read_document, validate

    env = env if env is not None else Environment.load(root)
    loaded = LoadedModel(Model())
    folder = root / MODEL_DIR
    patterns = ("*.yml", "*.yaml", "*.py")
    files = sorted(f for p in patterns for f in folder.glob(p)) if folder.is_dir() else []
    for file in files:
        if file.name.startswith(("_", ".")):
            continue
        if file.suffix == ".py":
            display = _display(file, root)
            merge(loaded, load_python_model(file, display), file=display)
            loaded.files.append(display)
            continue
        doc = read_document(file, root, env)
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            raise doc.fail(
                (), "a model file must be a mapping (schema, dimensions, facts, bridges)"
            )
        part = validate(Model, doc.data, doc)
        merge(loaded, part, doc)
        loaded.files.append(doc.display)
    return loaded


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_python_model(path: Path, display: str) -> Model:
    """Run ``models/x.py`` and take its ``model`` (a `Model`) or its ``dimensions``,
    ``facts`` and ``bridges`` lists: Python models build the same objects as YAML."""
    from crane.config.loader import SpecError
    from crane.project import run_python_file

    module = run_python_file(path, display, "models")
    found = getattr(module, "model", None)
    if isinstance(found, Model):
        return found
    parts = {k: getattr(module, k, []) for k in ("dimensions", "facts", "bridges")}
    if found is not None or not any(parts.values()):
        reason = "define `model = Model(...)` or `dimensions`/`facts`/`bridges` lists"
        raise SpecError([(display, None, None, reason)])
    return Model.model_validate(parts)


def merge(loaded: LoadedModel, part: Model, doc: Any = None, file: str | None = None) -> None:
    """Add ``part``'s objects to ``loaded``; a file's ``schema`` applies to its own objects."""
    for kind in ("dimensions", "facts", "bridges"):
        for index, obj in enumerate(getattr(part, kind)):
            if part.schema_ and not obj.schema_:
                obj = obj.model_copy(update={"schema_": part.schema_})
            items = getattr(loaded.model, kind)
            loaded.origins[(kind, len(items))] = Origin(doc, (kind, index), file)
            items.append(obj)


def from_model(model: Model) -> LoadedModel:
    """A Python-built `Model` as a `LoadedModel` (problems then name the object, not a line)."""
    loaded = LoadedModel(Model())
    merge(loaded, model)
    return loaded
