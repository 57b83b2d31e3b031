"""The per-pipeline lock: a second run fails clearly or waits; it never double-loads."""

from __future__ import annotations

import doctest
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from _runner_helpers import duck_rows, make_duck_orders, spec

from crane.errors import PipelineLockedError
from crane.pipelines import lock
from crane.pipelines.lock import pipeline_lock
from crane.pipelines.runner import run_pipeline

MY_URL = "mysql://root@127.0.0.1:3306/test"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_second_holder_is_refused_with_the_holder_pid(duck_url):
    with pipeline_lock("orders", duck_url):
        with pytest.raises(PipelineLockedError) as refused, pipeline_lock("orders", duck_url):
            pass
        with pipeline_lock("customers", duck_url):  # other pipelines are independent
            pass
    message = str(refused.value)
    assert "pipeline orders" in message and f"pid {os.getpid()}" in message and "--wait" in message
    with pipeline_lock("orders", duck_url):  # released on exit
        pass
    assert doctest.testmod(lock, optionflags=doctest.ELLIPSIS).failed == 0


def test_wait_queues_behind_the_holder(duck_url):
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with pipeline_lock("orders", duck_url):
            held.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with pipeline_lock("orders", duck_url, wait=True):
        order.append("second got it")
    thread.join()
    assert order == ["first done", "second got it"]


def test_a_killed_holder_releases_the_lock(tmp_path):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from crane.pipelines.lock import pipeline_lock\n"
            "with pipeline_lock('orders', sys.argv[1]):\n"
            "    print('held', flush=True); time.sleep(60)",
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    with pytest.raises(PipelineLockedError, match=f"pid {child.pid}"), pipeline_lock("orders", url):
        pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    with pipeline_lock("orders", url):
        pass


def test_concurrent_runs_never_double_load(tmp_path):
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 500)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    pipeline = spec("once", load={"strategy": "append", "primary_key": []})
    locked = pytest.raises(PipelineLockedError, match="pipeline once")
    with pipeline_lock("once", urls["target_url"]), locked:
        run_pipeline(pipeline, **urls)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(run_pipeline(pipeline, wait=True, **urls)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.rows_loaded for r in results) == [0, 500]
    assert len(duck_rows(tgt, "once")) == 500


@pytest.mark.integration
@pytest.mark.parametrize("url", [PG_URL, MY_URL], ids=["postgres", "mariadb"])
def test_server_locks_refuse_a_second_session(url):
    name = f"lock-test-{os.getpid()}"
    refused = pytest.raises(PipelineLockedError, match=f"pipeline {name}")
    with pipeline_lock(name, url), refused, pipeline_lock(name, url):
        pass
    with pipeline_lock(name, url), pipeline_lock(f"{name}-other", url):
        pass


@pytest.mark.integration
def test_postgres_lock_names_the_holder():
    name = f"lock-holder-{os.getpid()}"
    with (
        pipeline_lock(name, PG_URL),
        pytest.raises(PipelineLockedError) as refused,
        pipeline_lock(name, PG_URL),
    ):
        pass
    assert f"crane lock {name} pid={os.getpid()}" in str(refused.value)


def test_wait_queues_behind_another_process_writing_the_duckdb_file(tmp_path):
    """DuckDB allows one writer process per file: --wait queues instead of failing."""
    src, tgt = str(tmp_path / "src.duckdb"), str(tmp_path / "w.duckdb")
    make_duck_orders(src, 100)
    urls = {"source_url": f"duckdb:///{src}", "target_url": f"duckdb:///{tgt}"}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(1.0)",
            tgt,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "open"
    refused = run_pipeline(spec("busy"), **urls)
    assert refused.status == "failed" and "DuckDB" in (refused.error or "")
    queued = run_pipeline(spec("busy"), wait=True, **urls)
    child.wait()
    assert queued.ok, queued.error
    assert queued.rows_loaded == 100


def test_a_warehouse_in_a_missing_folder_is_named_not_its_lock_file(tmp_path):
    """The lock file sits beside the warehouse: a warehouse in a folder that does not
    exist failed with a bare FileNotFoundError about ``….lock``."""
    from crane.errors import ConnectorError
    from crane.pipelines.runner import run_pipeline

    src = tmp_path / "src.duckdb"
    make_duck_orders(str(src), 5)
    missing = tmp_path / "no" / "such"
    with pytest.raises(ConnectorError, match=f"warehouse's folder {missing} does not exist"):
        run_pipeline(
            spec("away"),
            source_url=f"duckdb:///{src}",
            target_url=f"duckdb:///{missing / 'w.duckdb'}",
        )
