"""The rebuild's embedding step on a cluster engine (Dask, Ray), run on real local clusters:
the same vectors as one process, and a worker killed mid-job (SIGKILL) costs its chunk, not
the job."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from regen import RegenError, load_ptbxl, load_settings
from regen.cli import app
from regen.encoder import Encoder
from regen.errors import ConfigError
from regen.rebuild import embed_records

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"


@pytest.fixture(scope="module")
def corpus():
    return load_ptbxl(SAMPLE, folds="1-8")


@pytest.fixture(scope="module")
def encoder():
    return Encoder.load(load_settings().encoder)


@pytest.fixture(scope="module")
def local_run(corpus, encoder, tmp_path_factory):
    """The reference: the first 96 records embedded in this process, 12 per chunk."""
    return embed_records(corpus[:96], encoder, tmp_path_factory.mktemp("local"), chunk=12,
                         progress=False)


def _same(run, ref) -> None:
    assert [r.key for r in run.records] == [r.key for r in ref.records]
    np.testing.assert_array_equal(run.vectors, ref.vectors)
    assert run.infos == ref.infos and run.errors == ref.errors


def _kill_when_staged(staging: Path, find_victim: Callable[[], int | None],
                      killed: dict) -> threading.Thread:
    """Once the first chunk is staged, SIGKILL the process find_victim() names."""

    def run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            staged = len(list(staging.glob("chunk-*.npz")))
            if staged:
                pid = find_victim()
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed.update(pid=pid, staged_before=staged)
                    return
            time.sleep(0.002)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_dask_local_cluster_gives_the_same_vectors(corpus, encoder, local_run, tmp_path):
    pytest.importorskip("distributed")
    run = embed_records(corpus[:96], encoder, tmp_path, chunk=12, workers=2, engine="dask",
                        progress=False)
    _same(run, local_run)
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 8
    assert run.timings["embed_s"] > 0                    # the workers' own timings come back


def test_dask_lost_worker_loses_one_chunk_not_the_job(corpus, encoder, local_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)                     # worker address -> pid
        killed: dict = {}
        victim = sorted(pids.values())[0]
        thread = _kill_when_staged(tmp_path, lambda: victim, killed)
        run = embed_records(corpus[:96], encoder, tmp_path, chunk=4, workers=2,
                            engine="dask", engine_address=cluster.scheduler_address,
                            progress=False)
        thread.join(timeout=5)
        assert killed.get("pid") == victim, "the worker was not killed while the job ran"
        assert killed["staged_before"] < 24              # it died mid-job ...
        _same(run, local_run)                            # ... and the job finished, unchanged
        assert victim not in client.run(os.getpid).values()
    finally:
        client.close()
        cluster.close()


def test_dask_chunk_the_cluster_gives_up_is_resubmitted(corpus, encoder, local_run, tmp_path):
    """A chunk whose task the scheduler cancels mid-job (as it does with a lost worker's,
    "already forgotten") is submitted again by the driver: the job still ends unchanged."""
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
    client = distributed.Client(cluster)
    cancelled: list[str] = []

    def cancel_one() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not cancelled:
            running = [k for keys in client.processing().values() for k in keys
                       if str(k).startswith("embed_chunk")]
            if running and list(tmp_path.glob("chunk-*.npz")):
                client.cancel([distributed.Future(running[0], client)], force=True)
                cancelled.append(str(running[0]))
            time.sleep(0.002)

    thread = threading.Thread(target=cancel_one, daemon=True)
    thread.start()
    try:
        run = embed_records(corpus[:96], encoder, tmp_path, chunk=4, workers=2,
                            engine="dask", engine_address=cluster.scheduler_address,
                            progress=False)
        thread.join(timeout=5)
        assert cancelled, "no chunk was running to cancel"
        _same(run, local_run)
    finally:
        client.close()
        cluster.close()


def _ray_task_pid() -> int | None:
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and cmd[0].startswith("ray::embed_chunk"):
            return proc.info["pid"]
    return None


def test_ray_local_cluster_survives_a_killed_worker(corpus, encoder, local_run, tmp_path):
    pytest.importorskip("ray")
    killed: dict = {}
    thread = _kill_when_staged(tmp_path, _ray_task_pid, killed)
    run = embed_records(corpus[:96], encoder, tmp_path, chunk=4, workers=2, engine="ray",
                        progress=False)
    thread.join(timeout=5)
    _same(run, local_run)
    assert killed.get("pid"), "no Ray worker was running embed_chunk when the first chunk landed"
    assert killed["staged_before"] < 24


def test_cli_rebuild_on_dask_matches_local(tmp_path):
    pytest.importorskip("distributed")
    from index import VectorIndex
    from regen.builds import list_builds

    vectors = {}
    for engine in ("local", "dask"):
        home = tmp_path / engine
        out = CliRunner().invoke(app, ["index", "rebuild", "--data", str(SAMPLE), "--folds",
                                       "1-2", "--home", str(home), "--chunk", "16",
                                       "--engine", engine, "--workers", "2", "--json"])
        assert out.exit_code == 0, out.output
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["timings"]["engine"] == engine
        (build,) = list_builds(load_settings(home))
        vectors[engine] = VectorIndex.load(build.path).vectors()
    for a, b in zip(vectors["local"], vectors["dask"]):
        np.testing.assert_array_equal(a, b)


def test_bad_engine_settings_are_clear_errors(tmp_path, corpus, encoder, monkeypatch):
    with pytest.raises(ConfigError, match="engine='spark'; expected 'local', 'dask' or 'ray'"):
        load_settings(tmp_path, engine="spark")
    with pytest.raises(ConfigError, match="engine 'spark' is unknown"):
        embed_records(corpus[:2], encoder, tmp_path / "s", engine="spark", progress=False)
    pytest.importorskip("distributed")
    monkeypatch.setattr("regen.engine.CONNECT_TIMEOUT_S", 2)
    with pytest.raises(RegenError, match=r"cannot reach the scheduler at 'tcp://127.0.0.1:9'"):
        embed_records(corpus[:2], encoder, tmp_path / "a", engine="dask",
                      engine_address="tcp://127.0.0.1:9", progress=False)
    assert not list((tmp_path / "a").glob("chunk-*.npz"))   # nothing half-written


def test_missing_cluster_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # one import-or-explain helper (errors.require), not a second one in the engine module
    import sys

    from regen.engine import open_runner
    from regen.errors import MissingDependencyError

    for engine, package in (("dask", "distributed"), ("ray", "ray")):
        monkeypatch.setitem(sys.modules, package, None)   # `import package` raises ImportError
        with pytest.raises(MissingDependencyError,
                           match=rf"pip install 'regen\[{engine}\]', or use --engine local"):
            with open_runner(engine):
                pass
