"""Project.load: files, environment, precedence, connection URLs, Python pipelines."""

import textwrap

import pytest

from crane.config import secrets
from crane.config.env import Environment
from crane.config.loader import SpecError
from crane.errors import ConfigError, UnknownNameError
from crane.project import Project, connection_url
from crane.templates import scaffold

NO_ENV = Environment.of({})


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def project_dir(tmp_path):
    _write(
        tmp_path,
        {
            "crane.yml": """\
                name: shop
                connections:
                  source:
                    url: sqlite:///data/shop.sqlite
                """,
            "pipelines/orders.yml": """\
                source:
                  table: orders
                target:
                  table: orders
                extract:
                  strategy: incremental
                  cursor: updated_at
                load:
                  strategy: merge
                  primary_key: [id]
                """,
        },
    )
    return tmp_path


def test_scaffold_loads_with_yaml_and_python_pipelines(tmp_path):
    scaffold(tmp_path)
    project = Project.load(tmp_path, env=NO_ENV)
    assert sorted(project.pipelines) == ["customers", "orders_etl"]
    assert project.pipeline_files["orders_etl"] == "pipelines/orders_etl.py"
    etl = project.pipeline("orders_etl")
    assert etl.extract.strategy == "incremental" and etl.load.primary_key == ["id"]
    assert "lower(trim(status))" in (etl.transform or "")
    assert (tmp_path / "data/source.sqlite").stat().st_size > 0
    assert project.warehouse_url == f"duckdb:///{tmp_path.resolve()}/warehouse.duckdb"
    assert project.source_url(etl) == f"sqlite:///{tmp_path.resolve()}/data/source.sqlite"
    with pytest.raises(ConfigError, match="already exists"):
        scaffold(tmp_path)


def test_yaml_and_python_build_the_same_spec(project_dir):
    _write(
        project_dir,
        {
            "pipelines/orders_py.py": """\
                from crane import ExtractSpec, LoadSpec, PipelineSpec, SourceSpec, TargetSpec

                pipeline = PipelineSpec(
                    name="orders_py",
                    source=SourceSpec(table="orders"),
                    target=TargetSpec(table="orders"),
                    extract=ExtractSpec(strategy="incremental", cursor="updated_at"),
                    load=LoadSpec(strategy="merge", primary_key=["id"]),
                )
                """
        },
    )
    project = Project.load(project_dir, env=NO_ENV)
    from_yaml = project.pipeline("orders").model_dump()
    from_python = project.pipeline("orders_py").model_dump()
    assert from_yaml == {**from_python, "name": "orders"}


def test_found_from_a_subdirectory(project_dir):
    (project_dir / "deep/er").mkdir(parents=True)
    assert Project.load(project_dir / "deep/er", env=NO_ENV).root == project_dir.resolve()


def test_no_project_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="no crane.yml") as caught:
        Project.load(tmp_path, env=NO_ENV)
    assert "crane init" in str(caught.value)


def test_conventional_variables_need_no_wiring(project_dir):
    env = Environment.of(
        {
            "SOURCE_DB_HOST": "pg.internal",
            "SOURCE_DB_NAME": "shop",
            "SOURCE_DB_USER": "etl",
            "SOURCE_DB_PASSWORD": "p@ss:w/rd",
            "TARGET_DB_HOST": "dwh",
            "TARGET_DB_PORT": "5433",
            "TARGET_DB_NAME": "warehouse",
            "TARGET_DB_USER": "loader",
            "BATCH_SIZE": "5000",
            "MAX_RETRIES": "9",
        }
    )
    project = Project.load(project_dir, env=env)
    spec = project.pipeline("orders")
    assert project.source_url(spec) == "postgresql://etl:p%40ss%3Aw%2Frd@pg.internal/shop"
    assert project.target_url(spec) == "postgresql://loader@dwh:5433/warehouse"
    assert spec.batch_size == 5000 and spec.max_retries == 9
    origins = {s.key: s.origin for s in project.settings}
    assert origins["connections.source"].startswith("env SOURCE_DB_HOST")
    assert origins["warehouse"].startswith("env TARGET_DB_HOST")
    assert origins["defaults.batch_size"] == "env BATCH_SIZE"
    assert secrets.mask("login p@ss:w/rd") == "login ***"


def test_explicit_pipeline_value_beats_env_default(project_dir):
    (project_dir / "pipelines/small.yml").write_text(
        "source: {table: a}\ntarget: {table: a}\nbatch_size: 10\n"
    )
    project = Project.load(project_dir, env=Environment.of({"BATCH_SIZE": "5000"}))
    assert project.pipeline("small").batch_size == 10
    assert project.pipeline("orders").batch_size == 5000


def test_precedence_cli_over_env_over_file_over_default(project_dir):
    (project_dir / "crane.yml").write_text(
        "warehouse: duckdb:///from_file.duckdb\ndefaults:\n  max_retries: 5\n"
        "connections:\n  source:\n    url: sqlite:///data/shop.sqlite\n"
    )
    env = Environment.of({"CRANE_WAREHOUSE": "duckdb:///from_env.duckdb"})

    def effective(**overrides):
        project = Project.load(project_dir, env=env, overrides=overrides)
        return {s.key: (s.value, s.origin) for s in project.settings}

    settings = effective()
    assert settings["warehouse"][0].endswith("/from_env.duckdb")
    assert settings["warehouse"][1] == "env CRANE_WAREHOUSE"
    assert settings["defaults.max_retries"] == (5, "crane.yml:3")
    assert settings["defaults.batch_size"] == (100_000, "default")
    settings = effective(warehouse="duckdb:///from_cli.duckdb")
    assert settings["warehouse"][0].endswith("/from_cli.duckdb")
    assert settings["warehouse"][1] == "cli"


def test_dotenv_and_interpolation_provenance(project_dir):
    (project_dir / ".env").write_text("SHOP_DB_PASSWORD=dotenv-secret-1\n")
    (project_dir / "crane.yml").write_text(
        "connections:\n  source:\n    url: postgresql://app:${SHOP_DB_PASSWORD}@db/shop\n"
    )
    project = Project.load(project_dir, env=Environment.load(project_dir))
    setting = next(s for s in project.settings if s.key == "connections.source")
    assert setting.origin == "crane.yml:2 via .env SHOP_DB_PASSWORD"
    assert secrets.mask(setting.value) == "postgresql://app:***@db/shop"
    assert secrets.mask("dotenv-secret-1") == "***"


def test_unknown_connection_names_file_line_field(project_dir):
    (project_dir / "pipelines/bad.yml").write_text(
        "source:\n  connection: sorce\n  table: a\ntarget:\n  table: a\n"
    )
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=NO_ENV)
    assert str(caught.value) == (
        "pipelines/bad.yml, line 2, field source.connection: unknown connection 'sorce'; "
        "known: source (did you mean 'source'?)"
    )


def test_duplicate_pipeline_names(project_dir):
    (project_dir / "pipelines/again.yml").write_text(
        "name: orders\nsource: {table: a}\ntarget: {table: a}\n"
    )
    with pytest.raises(ConfigError, match="'orders' is defined twice"):
        Project.load(project_dir, env=NO_ENV)


def test_python_pipeline_error_names_file_and_line(project_dir):
    (project_dir / "pipelines/broken.py").write_text(
        "from crane import PipelineSpec\n\n"
        "pipeline = PipelineSpec(\n    name='x', source={'table': 'a'}, target={}\n)\n"
    )
    with pytest.raises(SpecError, match=r"pipelines/broken.py, line 3, field target.table"):
        Project.load(project_dir, env=NO_ENV)
    (project_dir / "pipelines/broken.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="must define `pipeline"):
        Project.load(project_dir, env=NO_ENV)


def test_several_python_pipelines_in_one_file(project_dir):
    (project_dir / "pipelines/_helpers.py").write_text("DIMENSIONS = ('stores', 'products')\n")
    (project_dir / "pipelines/dims.py").write_text(
        "from _helpers import DIMENSIONS\n"
        "from crane import PipelineSpec\n"
        "pipelines = [PipelineSpec(name=t, source={'table': t}, target={'table': t},\n"
        "                          load={'strategy': 'replace'}) for t in DIMENSIONS]\n"
    )
    project = Project.load(project_dir, env=NO_ENV)
    assert {"stores", "products"} <= set(project.pipelines)
    assert [s.name for s in project.select([], all_=True)] == ["orders", "products", "stores"]


def test_unknown_pipeline_suggests(project_dir):
    project = Project.load(project_dir, env=NO_ENV)
    with pytest.raises(UnknownNameError, match="did you mean 'orders'"):
        project.pipeline("ordres")


def test_connection_url_from_parts():
    from crane.config.spec import ConnectionSpec

    spec = ConnectionSpec(type="mysql", host="h", port=3307, database="d", user="u", password="a b")
    assert connection_url(spec) == "mysql://u:a%20b@h:3307/d"
    assert connection_url(ConnectionSpec(type="sqlite", database="x.db")) == "sqlite:///x.db"


def test_bad_environment_values_name_the_variable(project_dir):
    env = Environment.of({"SOURCE_DB_HOST": "h", "SOURCE_DB_PORT": "five"})
    with pytest.raises(SpecError, match=r"^environment variable SOURCE_DB_PORT: Input should be"):
        Project.load(project_dir, env=env)
    with pytest.raises(SpecError, match=r"^environment variable BATCH_SIZE: Input should be grea"):
        Project.load(project_dir, env=Environment.of({"BATCH_SIZE": "0"}))
    with pytest.raises(SpecError, match=r"^command line defaults.max_retries: Input should be"):
        Project.load(project_dir, env=NO_ENV, overrides={"defaults.max_retries": "x"})


def test_password_beside_a_url_is_used_not_dropped(tmp_path):
    """`url:` plus `password: ${VAR}` keeps the secret out of the URL text; the password
    used to be ignored silently whenever a url was given."""
    _write(
        tmp_path,
        {
            "crane.yml": """\
                connections:
                  source:
                    url: postgresql://app@db.internal:5432/shop?sslmode=require
                    password: ${SHOP_DB_PASSWORD}
                """
        },
    )
    env = Environment.of({"SHOP_DB_PASSWORD": "p@ss/w#rd"})
    project = Project.load(tmp_path, env=env)
    assert project.connection_url("source") == (
        "postgresql://app:p%40ss%2Fw%23rd@db.internal:5432/shop?sslmode=require"
    )
    (tmp_path / "crane.yml").write_text(
        "connections:\n  source:\n    url: postgresql://app:other@db/shop\n    password: x\n"
    )
    with pytest.raises(SpecError, match=r"line 2, field connections.source: the password is given"):
        Project.load(tmp_path, env=NO_ENV)


def test_python_pipeline_typo_reads_like_a_yaml_one(project_dir):
    (project_dir / "pipelines/typo.py").write_text(
        "from crane.config.spec import LoadSpec, PipelineSpec\n"
        "pipeline = PipelineSpec(\n"
        "    name='typo', source={'table': 'a'}, target={'table': 'a'}, batch_sise=10,\n"
        "    load=LoadSpec(strategy='merge', primary_key=['id'], duplicate_keys='keep_lats'),\n"
        ")\n"
    )
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=NO_ENV)
    assert str(caught.value) == (
        "pipelines/typo.py, line 4, field duplicate_keys: Input should be 'fail', 'quarantine'"
        " or 'keep_last' (did you mean 'keep_last'?)"
    )
    text = (project_dir / "pipelines/typo.py").read_text().replace("keep_lats", "keep_last")
    (project_dir / "pipelines/typo.py").write_text(text)
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=NO_ENV)
    assert str(caught.value) == (
        "pipelines/typo.py, line 2, field batch_sise: unknown field 'batch_sise'"
        " (did you mean 'batch_size'?)"
    )


def test_unknown_connection_type_fails_at_load_naming_where_it_was_set(project_dir):
    """A misspelt type used to pass `crane config show` and fail each pipeline at run time."""
    env = Environment.of({"SOURCE_DB_TYPE": "postgress", "SOURCE_DB_HOST": "h"})
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=env)
    assert str(caught.value).startswith(
        "environment variable SOURCE_DB_TYPE: unknown connection type 'postgress'; known: "
    )
    assert "(did you mean 'postgres', 'postgresql'?)" in str(caught.value)
    text = (project_dir / "crane.yml").read_text().replace("sqlite:///", "sqllite:///")
    (project_dir / "crane.yml").write_text(text)
    with pytest.raises(SpecError, match=r"^crane.yml, line 4, field connections.source.url: unkn"):
        Project.load(project_dir, env=NO_ENV)
    # a connection no pipeline uses (a connector still to come) does not stop the project
    text = text.replace("sqllite:///", "sqlite:///") + "  later:\n    url: snowflake://acct/db\n"
    (project_dir / "crane.yml").write_text(text)
    assert Project.load(project_dir, env=NO_ENV).spec.connections["later"].url


def test_env_example_lists_every_conventional_variable(tmp_path):
    from crane.config.env import conventional_variables

    scaffold(tmp_path / "p")
    example = (tmp_path / "p" / ".env.example").read_text()
    names = conventional_variables("source") + conventional_variables("target")
    missing = [n for n in [*names, "BATCH_SIZE", "MAX_RETRIES"] if f"# {n}=" not in example]
    assert missing == []


def test_python_pipeline_syntax_error_names_the_line(project_dir):
    (project_dir / "pipelines/broken.py").write_text("x = 1\npipeline = dict(a=1,,)\n")
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=NO_ENV)
    assert str(caught.value) == "pipelines/broken.py, line 2: SyntaxError: invalid syntax"


def test_unknown_warehouse_names_where_it_was_given(project_dir):
    """A --warehouse or CRANE_WAREHOUSE value was blamed on a line of crane.yml."""
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=NO_ENV, overrides={"warehouse": "wharehouse"})
    assert str(caught.value).startswith("command line --warehouse: unknown connection 'wharehouse'")
    env = Environment.of({"CRANE_WAREHOUSE": "nope"})
    with pytest.raises(SpecError) as caught:
        Project.load(project_dir, env=env)
    assert str(caught.value).startswith("environment variable CRANE_WAREHOUSE: unknown connection")
    (project_dir / "crane.yml").write_text("name: shop\nwarehouse: dwh\n")
    with pytest.raises(SpecError, match=r"^crane.yml, line 2, field warehouse: unknown connection"):
        Project.load(project_dir, env=NO_ENV)
    bad_url = "postgresql://app:pw#x@db/dwh"
    with pytest.raises(SpecError, match=r"^command line --warehouse: not a valid connection URL"):
        Project.load(project_dir, env=NO_ENV, overrides={"warehouse": bad_url})
