"""``crane pipeline list|show``: what the project defines, as crane understood it."""

from typing import Annotated, Any

import typer

from crane.cli.app import JsonOption, ProjectOption

app = typer.Typer(help="Inspect the project's pipelines.", no_args_is_help=True)


@app.command("list")
def list_(json: JsonOption = False, project: ProjectOption = None) -> None:
    """List pipelines: source, target, extract and load strategy, defining file."""
    from crane.cli.output import print_json, print_table
    from crane.project import Project

    loaded = Project.load(project)
    rows = []
    for name in sorted(loaded.pipelines):
        spec = loaded.pipelines[name]
        source = spec.source.table or "(query)"
        if spec.source.schema_:
            source = f"{spec.source.schema_}.{source}"
        target = (
            f"{spec.target.schema_}.{spec.target.table}"
            if spec.target.schema_
            else spec.target.table
        )
        rows.append(
            {
                "name": name,
                "source": f"{spec.source.connection}:{source}",
                "target": f"{spec.target.connection or 'warehouse'}:{target}",
                "extract": spec.extract.strategy,
                "load": spec.load.strategy,
                "file": loaded.pipeline_files[name],
            }
        )
    if json:
        print_json(rows)
    else:
        keys = ["name", "source", "target", "extract", "load", "file"]
        print_table("pipelines", keys, [[r[k] for k in keys] for r in rows])


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    json: JsonOption = False,
    project: ProjectOption = None,
) -> None:
    """Show one pipeline's full spec, defaults included, with its resolved connections."""
    from crane.cli.output import print_json
    from crane.config.secrets import mask
    from crane.project import Project

    loaded = Project.load(project)
    spec = loaded.pipeline(name)
    data = {
        "file": loaded.pipeline_files[name],
        "source_url": loaded.source_url(spec),
        "target_url": loaded.target_url(spec),
        **spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if json:
        print_json(data)
        return
    typer.echo(mask(_yaml(data)), nl=False)


def _yaml(data: dict[str, Any]) -> str:
    """YAML with multi-line strings (SQL transforms) as readable literal blocks."""
    import textwrap

    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        if "\n" in value:
            block = textwrap.dedent(value).strip() + "\n"
            return dumper.represent_scalar("tag:yaml.org,2002:str", block, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True)
