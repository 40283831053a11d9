"""Where a rebuild's chunks are embedded: in this process, or on a Dask or Ray cluster.

Every engine runs the same function, `embed_chunk`: read and prepare a chunk's records, embed
them, and return a compact `StagedChunk` (keys, vectors, what was read), which the job stages
on disk as soon as it arrives. A cluster engine runs one task per chunk, a few chunks per
worker in flight. When a worker dies its chunks run again elsewhere (Dask reschedules them and
the driver resubmits any the scheduler cancels; Ray retries them), so a lost worker costs its
chunks, not the job, and a lost driver costs nothing that was staged (`--resume`).

Without an address an engine starts a local cluster of `workers` processes on this machine and
stops it afterwards; with `engine_address` (a Dask scheduler, ``tcp://host:8786``, or a Ray
cluster, ``ray://host:10001`` or ``auto``) it uses that cluster, whose workers must be able to
import regen and read the records' paths (shared storage).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from regen.corpus import CorpusRecord
from regen.dataset import prepare_records
from regen.encoder import Encoder
from regen.errors import ConfigError, require
from regen.prepare import Prepared
from regen.settings import CLUSTER_ENGINES

CONNECT_TIMEOUT_S = 10
MAX_RESUBMITS = 3           # times the Dask driver resubmits a chunk the cluster gave up on
Job = tuple[int, Sequence[CorpusRecord]]          # (chunk number, its records)


@dataclass(frozen=True)
class StagedChunk:
    """One chunk's output: the records that read (keys in corpus order), their unit-norm
    vectors and what was read (source rate, samples, lead names), and messages of the records
    left out (skip_bad). Small enough to send between machines (no signals)."""

    keys: np.ndarray            # (n,) str
    vectors: np.ndarray         # (n, dim) float32
    fs: np.ndarray              # (n,) float64
    n_samples: np.ndarray       # (n,) int64
    leads: np.ndarray           # (n,) str, comma-separated lead names
    errors: np.ndarray          # (m,) str
    read_s: float = 0.0
    embed_s: float = 0.0

    @classmethod
    def of(cls, prepared: Sequence[Prepared], vectors: np.ndarray, errors: Sequence[str],
           read_s: float = 0.0, embed_s: float = 0.0) -> StagedChunk:
        return cls(keys=np.array([p.id for p in prepared], dtype=str),
                   vectors=np.asarray(vectors, dtype=np.float32),
                   fs=np.array([p.source_fs for p in prepared], dtype=np.float64),
                   n_samples=np.array([p.source_samples for p in prepared], dtype=np.int64),
                   leads=np.array([",".join(p.source_leads) for p in prepared], dtype=str),
                   errors=np.array(list(errors), dtype=str), read_s=read_s, embed_s=embed_s)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys, "vectors": self.vectors, "fs": self.fs,
                "n_samples": self.n_samples, "leads": self.leads, "errors": self.errors}


def embed_chunk(records: Sequence[CorpusRecord], encoder: Encoder, skip_bad: bool = False,
                batch_size: int = 256) -> StagedChunk:
    """Read, prepare and embed `records`: the embedding step, whichever engine runs it."""
    t0 = time.perf_counter()
    prepared, _, errors = prepare_records(records, encoder.cfg, skip_bad=skip_bad,
                                          progress=False)
    t1 = time.perf_counter()
    vectors = encoder.embed(prepared, batch_size=batch_size)
    return StagedChunk.of(prepared, vectors, errors, read_s=t1 - t0,
                          embed_s=time.perf_counter() - t1)


class Runner(Protocol):
    workers: int

    def run(self, jobs: Sequence[Job], encoder: Encoder, skip_bad: bool,
            batch_size: int) -> Iterator[tuple[int, StagedChunk]]:
        """Embed each job's records; yield (chunk number, result) in completion order."""
        ...


def _window(workers: int) -> int:
    # Two chunks per worker in flight: none idles while the driver stages a result, and a
    # corpus of a million records never sits in the scheduler's memory at once.
    return max(2, 2 * workers)


class DaskRunner:
    def __init__(self, client: Any):
        self.client = client
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))

    def run(self, jobs: Sequence[Job], encoder: Encoder, skip_bad: bool,
            batch_size: int) -> Iterator[tuple[int, StagedChunk]]:
        from distributed import as_completed

        enc = self.client.scatter(encoder, broadcast=True, hash=False)
        records = dict(jobs)
        queue, running = [i for i, _ in jobs], as_completed()
        which: dict[Any, int] = {}
        lost: dict[int, int] = {}

        def submit(i: int) -> None:
            fut = self.client.submit(embed_chunk, list(records[i]), enc, skip_bad, batch_size,
                                     pure=False)
            which[fut] = i
            running.add(fut)

        for _ in range(min(_window(self.workers), len(queue))):
            submit(queue.pop(0))
        for fut in running:
            i = which.pop(fut)
            try:
                result = fut.result()       # a task's own error (a bad record) is raised here
            except CancelledError:
                # The scheduler gave the chunk up with a lost worker ("already forgotten"):
                # run it again, a few times, rather than lose the job.
                lost[i] = lost.get(i, 0) + 1
                if lost[i] > MAX_RESUBMITS:
                    raise
                if enc.status != "finished":
                    enc = self.client.scatter(encoder, broadcast=True, hash=False)
                submit(i)
                continue
            fut.release()
            if queue:
                submit(queue.pop(0))
            yield i, result


class RayRunner:
    def __init__(self, ray: Any):
        self.ray = ray
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        # max_retries: a task whose worker process dies runs again (up to 3 times).
        self.task = ray.remote(num_cpus=1, max_retries=3)(embed_chunk)

    def run(self, jobs: Sequence[Job], encoder: Encoder, skip_bad: bool,
            batch_size: int) -> Iterator[tuple[int, StagedChunk]]:
        ray = self.ray
        enc = ray.put(encoder)
        queue, which = list(jobs), {}

        def submit() -> None:
            i, recs = queue.pop(0)
            which[self.task.remote(list(recs), enc, skip_bad, batch_size)] = i

        for _ in range(min(_window(self.workers), len(queue))):
            submit()
        while which:
            [ref], _ = ray.wait(list(which), num_returns=1)
            i = which.pop(ref)
            result = ray.get(ref)
            if queue:
                submit()
            yield i, result


@contextmanager
def open_runner(engine: str, address: str = "", workers: int = 1,
                log: Callable[[str], None] = lambda m: None) -> Iterator[Runner]:
    """A cluster engine's runner: a local cluster of `workers` processes (stopped on exit), or
    the cluster at `address`."""
    if engine not in CLUSTER_ENGINES:
        raise ConfigError(f"engine {engine!r} has no cluster runner; expected one of "
                          f"{list(CLUSTER_ENGINES)}")
    if workers < 1:
        raise ConfigError(f"workers={workers}; expected >= 1")
    if engine == "dask":
        distributed = require("distributed", "dask", "or use --engine local")
        cluster = None
        try:
            if address:
                client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
            else:
                # One thread per worker process: torch and the reader hold the GIL in places,
                # and processes are what a cluster of machines has anyway.
                cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR)
                client = distributed.Client(cluster)
        except OSError as exc:
            raise ConfigError(f"engine dask: cannot reach the scheduler at {address!r} "
                              f"({exc}); check engine_address (tcp://HOST:8786)") from exc
        runner = DaskRunner(client)
        log(f"engine dask: {runner.workers} workers at "
            f"{address or 'a local cluster on this machine'}")
        try:
            yield runner
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    ray = require("ray", "ray", "or use --engine local")
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            else:
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")   # loopback only
                ray.init(num_cpus=workers, include_dashboard=False,
                         logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"engine ray: cannot start or reach the cluster at "
                              f"{address or 'local'} ({exc}); check engine_address") from exc
    ray_runner = RayRunner(ray)
    log(f"engine ray: {ray_runner.workers} CPUs at {address or 'a local cluster'}")
    try:
        yield ray_runner
    finally:
        if started:
            ray.shutdown()
