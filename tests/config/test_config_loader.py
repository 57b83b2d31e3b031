"""YAML → specs with errors naming file, line and field."""

import pytest

from crane.config.env import Environment
from crane.config.loader import (
    SpecError,
    apply_defaults,
    load_pipeline_document,
    load_project_document,
    parse_yaml,
)
from crane.config.spec import PipelineSpec

ORDERS = """\
description: orders
source:
  table: orders
target:
  table: orders
load:
  strategy: upsert
  primary_key: [id]
"""


def _pipelines(text, env=None, display="pipelines/orders.yml"):
    doc = parse_yaml(text, display, env or Environment.of({}))
    return load_pipeline_document(doc, "orders")


def test_valid_pipeline_named_after_file():
    [spec] = _pipelines(ORDERS.replace("upsert", "merge"))
    assert spec.name == "orders"
    assert spec.load.strategy == "merge" and spec.load.primary_key == ["id"]


def test_error_names_file_line_and_field():
    with pytest.raises(SpecError) as caught:
        _pipelines(ORDERS)
    message = str(caught.value)
    assert message.startswith("pipelines/orders.yml, line 7, field load.strategy: Input should be")
    assert caught.value.line == 7 and caught.value.field == "load.strategy"


def test_unknown_field_is_reported_at_its_line():
    text = "source:\n  table: a\ntarget:\n  table: b\nextract:\n  strategy: full\n  cursr: x\n"
    with pytest.raises(SpecError, match=r"line 7, field extract\.cursr: unknown field 'cursr'"):
        _pipelines(text)


def test_model_rule_reported_at_section():
    text = "source:\n  table: a\ntarget:\n  table: b\nextract:\n  strategy: incremental\n"
    with pytest.raises(SpecError, match=r"line 5, field extract: incremental extraction needs"):
        _pipelines(text)


def test_missing_field_points_at_parent():
    text = "source:\n  table: a\n\ntarget:\n  schema: x\n"
    with pytest.raises(SpecError, match=r"line 4, field target\.table: Field required"):
        _pipelines(text)


def test_every_problem_is_listed():
    text = "source:\n  table: a\ntarget:\n  table: b\nbatch_size: 0\nmax_retries: -1\n"
    with pytest.raises(SpecError) as caught:
        _pipelines(text)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "pipelines/orders.yml, line 5, field batch_size",
        "pipelines/orders.yml, line 6, field max_retries",
    ]


def test_list_of_pipelines_reports_item_path():
    text = (
        "pipelines:\n"
        "  - name: a\n    source: {table: a}\n    target: {table: a}\n"
        "  - name: b\n    source: {table: b}\n    target: {table: b}\n"
        "    load: {strategy: merge}\n"
    )
    with pytest.raises(SpecError, match=r"line 8, field pipelines\[1\]\.load: load strategy"):
        _pipelines(text)


def test_yaml_syntax_error_has_line():
    with pytest.raises(SpecError, match=r"pipelines/orders.yml, line 3: invalid YAML"):
        _pipelines("source:\n  table: a\n  - broken\n")


def test_duplicate_keys_are_errors():
    with pytest.raises(SpecError, match=r"line 3, field source: duplicate key 'source'"):
        _pipelines("source: {table: a}\ntarget: {table: b}\nsource: {table: c}\n")


def test_interpolation_per_scalar_and_missing_variable_line():
    env = Environment.of({"TABLE": "orders: injected", "SIZE": "500"})
    text = "source:\n  table: ${TABLE}\ntarget:\n  table: t\nbatch_size: ${SIZE}\n"
    [spec] = _pipelines(text, env)
    assert spec.source.table == "orders: injected"  # a value, never YAML structure
    assert spec.batch_size == 500
    with pytest.raises(SpecError, match=r"line 4, field target\.table: .*NOPE is not set"):
        _pipelines("source:\n  table: a\ntarget:\n  table: ${NOPE}\n")


def test_dates_stay_text():
    text = "source: {table: a}\ntarget: {table: b}\nextract:\n  strategy: incremental\n"
    text += "  cursor: updated_at\n  initial_value: 2024-01-31\n"
    [spec] = _pipelines(text)
    assert spec.extract.initial_value == "2024-01-31"


def test_project_document_and_inline_pipelines():
    text = (
        "name: shop\nconnections:\n  source:\n    url: sqlite:///shop.db\n"
        "pipelines:\n  stores:\n    source: {table: stores}\n    target: {table: stores}\n"
    )
    doc = parse_yaml(text, "crane.yml", Environment.of({}))
    spec = load_project_document(doc)
    assert spec.pipelines["stores"].name == "stores"
    assert doc.lines[("connections", "source", "url")] == 4
    text = "name: x\nconnections:\n  source:\n    host: h\n"
    bad = parse_yaml(text, "crane.yml", Environment.of({}))
    with pytest.raises(SpecError, match=r"crane.yml, line 3, field connections.source: a conn"):
        load_project_document(bad)


def test_apply_defaults_only_fills_unset_fields():
    explicit = PipelineSpec(
        name="a", source={"table": "a"}, target={"table": "a"}, batch_size=100_000
    )
    implicit = PipelineSpec(name="b", source={"table": "b"}, target={"table": "b"})
    defaults = {"batch_size": "5000", "max_retries": None}
    assert apply_defaults(explicit, defaults).batch_size == 100_000
    assert apply_defaults(implicit, defaults).batch_size == 5000
    assert apply_defaults(implicit, defaults).max_retries == 3


def test_unset_variable_error_keeps_its_hint():
    text = "source:\n  table: ${SRC_TABLE}\ntarget:\n  table: b\n"
    with pytest.raises(SpecError) as caught:
        _pipelines(text)
    message = str(caught.value)
    assert message.startswith("pipelines/orders.yml, line 2, field source.table: ")
    assert "hint: export SRC_TABLE=... or add it to .env, or write ${SRC_TABLE:-default}" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source: {table: a}\ntarget: {table: b}\nextract:\n  strategy: incremental\n"
            "  cursr: updated_at\n",
            "line 5, field extract.cursr: unknown field 'cursr' (did you mean 'cursor'?)",
        ),
        (
            "source: {table: a}\ntarget: {table: b}\nbach_size: 10\n",
            "line 3, field bach_size: unknown field 'bach_size' (did you mean 'batch_size'?)",
        ),
        (
            "source: {table: a}\ntarget: {table: b}\nextract: {strategy: incremantal}\n",
            "or 'partitioned' (did you mean 'incremental'?)",
        ),
        (
            "source: {table: a, shema: s}\ntarget: {table: b}\n",
            "unknown field 'shema' (did you mean 'schema'?)",
        ),
    ],
)
def test_unknown_names_suggest_the_near_one(text, expected):
    with pytest.raises(SpecError) as caught:
        _pipelines(text)
    assert expected in str(caught.value)


def test_unknown_connection_field_in_project_suggests():
    text = "name: x\nconnections:\n  source:\n    url: sqlite:///a.db\n    pasword: x\n"
    doc = parse_yaml(text, "crane.yml", Environment.of({}))
    with pytest.raises(SpecError, match=r"unknown field 'pasword' \(did you mean 'password'\?\)"):
        load_project_document(doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the quote opened on line 2; PyYAML notices only at the end of the file
        (
            'source:\n  table: "orders\ntarget:\n  table: t\n',
            "line 2: invalid YAML: a quoted scalar starts here and is not closed "
            "(found unexpected end of stream at line 5)",
        ),
        (
            "source:\n  table: [orders\ntarget:\n  table: t\n",
            "line 2: invalid YAML: a flow sequence starts here and is not closed "
            "(did not find expected ',' or ']' at line 3)",
        ),
        (
            "source:\n\ttable: orders\n",
            "line 2: invalid YAML: found character that cannot start any token "
            "(a tab: YAML indents with spaces)",
        ),
    ],
)
def test_yaml_syntax_error_points_where_the_construct_began(text, expected):
    with pytest.raises(SpecError) as caught:
        _pipelines(text)
    assert str(caught.value) == f"pipelines/orders.yml, {expected}"


def test_spec_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    from crane.config.loader import read_document

    (tmp_path / "pipelines").mkdir()
    path = tmp_path / "pipelines" / "orders.yml"
    path.write_bytes(b"source:\n  table: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        read_document(path, tmp_path, Environment.of({}))
    assert str(caught.value) == "pipelines/orders.yml, line 2: not UTF-8 text"
