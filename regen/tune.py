"""Choosing the index factory by measurement on the corpus's own embeddings.

Each candidate FAISS factory is built on the vectors and measured against exact search:
recall@k, p50/p99 single-query latency, batch throughput, build time and serialized size (its
memory on CPU). An approximate candidate's search parameter (HNSW efSearch, IVF nprobe) is
raised until it reaches the recall target, and the value is reported. The recommendation is the
cheapest candidate that reaches the target: the smallest in memory among those whose p50
latency is within the budget, or the fastest when none is.

Queries are corpus vectors themselves, each searched with itself left out of its results, so
the measurement needs no held-out data and sees the corpus's real neighbourhood structure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import db as store
from index import IndexStoreError, VectorIndex, recall_at_k, set_threads
from regen.errors import IndexMismatchError
from regen.settings import Settings

# {n}: IVF lists for the corpus size; {m}: PQ sub-quantizers for the dimension. "np" skips
# FAISS's polysemous training (code reordering for Hamming filtering, unused here), which
# otherwise dominates IVF-PQ build time.
DEFAULT_FACTORIES = ("Flat", "HNSW32", "IVF{n},Flat", "IVF{n},PQ{m}x8np,RFlat")
EF_SEARCH = (16, 32, 64, 128, 256, 512, 1024)
K_FACTOR_RF = 8          # an RFlat index re-ranks k * this many PQ candidates exactly
TRAIN_PER_LIST = 40      # IVF k-means trains on this many vectors per list (FAISS asks >= 39)


@dataclass(frozen=True)
class Candidate:
    """One factory as measured. `params` are the search parameters it was measured with."""

    factory: str
    params: dict[str, float] = field(default_factory=dict)
    recall: float = 0.0           # recall@k against exact search, 0..1
    p50_ms: float = math.inf      # single-query latency, milliseconds
    p99_ms: float = math.inf
    qps: float = 0.0              # queries per second, all queries in one batch
    build_s: float = 0.0          # create + train + add
    bytes: int = 0                # serialized size: its memory on CPU
    on_gpu: bool = False
    skipped: str | None = None    # why it could not be measured

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TuneResult:
    n: int
    dim: int
    k: int
    queries: int
    target: float
    max_p50_ms: float
    candidates: tuple[Candidate, ...]
    recommended: Candidate | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = [c.to_json() for c in self.candidates]
        d["recommended"] = self.recommended.to_json() if self.recommended else None
        return d


def nlist_for(n: int) -> int:
    """IVF lists for n vectors: 4 * sqrt(n), so a list holds ~sqrt(n) / 4 vectors."""
    return max(1, round(4 * math.sqrt(n)))


def pq_m_for(dim: int) -> int:
    """PQ sub-quantizers: a divisor of `dim` near dim / 4 (32 one-byte codes for 128-d)."""
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def expand(factory: str, n: int, dim: int) -> str:
    """`factory` with {n} and {m} filled in for this corpus size and dimension."""
    return factory.replace("{n}", str(nlist_for(n))).replace("{m}", str(pq_m_for(dim)))


def _nlist(factory: str) -> int:
    """IVF lists of a factory string such as "IVF400,Flat" or "IVF400_HNSW32,PQ8"; 0 if none."""
    head = factory.split(",")[0]
    digits = head[3:].split("_")[0]
    return int(digits) if head.startswith("IVF") and digits.isdigit() else 0


def _sweep(factory: str) -> list[dict[str, float]]:
    """Search parameters to try, cheapest first."""
    if "HNSW" in factory and not _nlist(factory):
        return [{"efSearch": ef} for ef in EF_SEARCH]
    nlist = _nlist(factory)
    if nlist:
        probes = [p for p in (2 ** i for i in range(20)) if p < nlist] + [nlist]
        extra = {"k_factor_rf": K_FACTOR_RF} if "RFlat" in factory else {}
        return [{"nprobe": p, **extra} for p in probes]
    return [{}]


def _search(vi: VectorIndex, q: np.ndarray, k: int, self_ids: np.ndarray | None) -> np.ndarray:
    """(m, k) ids of the k best results, the query's own id left out when `self_ids` given."""
    if self_ids is None:
        return vi.search(q, k)[1]
    ids = vi.search(q, k + 1)[1]
    keep = ids != self_ids[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")  # kept entries first, order preserved
    return np.take_along_axis(ids, order, axis=1)[:, :k]


def measure(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray,
            exact_ids: np.ndarray, factory: str, *, k: int = 10, target: float = 0.95,
            self_ids: np.ndarray | None = None, latency_queries: int = 200,
            use_gpu: bool | None = None) -> Candidate:
    """Build `factory` on vectors (n, d) float32 with ids (n,) int64 and measure it.

    queries: (m, d) float32; exact_ids: (m, k) int64 exact answers; self_ids: (m,) the ids of
    the queries themselves when they are corpus vectors (left out of the results). The search
    parameter is raised through `_sweep` until recall >= target (or the sweep ends). Latency
    is timed over the first `latency_queries` queries, one at a time on one FAISS thread;
    throughput with all queries in one batch on every thread.
    """
    dim = vectors.shape[1]
    # The first add trains the index: IVF k-means on a random sample of TRAIN_PER_LIST
    # vectors per list, which is as good as all of them and minutes faster at 1M.
    lists, n = _nlist(factory), len(vectors)
    first = min(n, max(256, TRAIN_PER_LIST * lists)) if lists else n
    order = np.random.default_rng(0).permutation(n) if first < n else None
    t0 = time.perf_counter()
    try:
        vi = VectorIndex.create(dim, factory=factory, encoder_fingerprint="tune",
                                use_gpu=use_gpu)
        if order is None:
            vi.add(vectors, ids)
        else:
            for part in (order[:first], np.sort(order[first:])):
                vi.add(vectors[part], ids[part])
    except IndexStoreError as exc:
        return Candidate(factory, skipped=str(exc))
    build_s = time.perf_counter() - t0
    params: dict[str, float] = {}
    recall = 0.0
    for params in _sweep(factory):
        if params:
            vi.set_search_params(**params)
        recall = recall_at_k(_search(vi, queries, k, self_ids), exact_ids)
        if recall >= target:
            break
    lat = []
    threads = set_threads(1)  # one query, one thread: how a server runs concurrent queries
    try:
        for i in range(min(latency_queries, len(queries))):
            q = queries[i:i + 1]
            t1 = time.perf_counter()
            _search(vi, q, k, None if self_ids is None else self_ids[i:i + 1])
            lat.append((time.perf_counter() - t1) * 1e3)
    finally:
        set_threads(threads)
    t2 = time.perf_counter()
    _search(vi, queries, k, self_ids)
    qps = len(queries) / max(time.perf_counter() - t2, 1e-9)
    return Candidate(factory, dict(params), float(recall), float(np.percentile(lat, 50)),
                     float(np.percentile(lat, 99)), float(qps), build_s, vi.serialized_size(),
                     vi.on_gpu)


def recommend(candidates: Sequence[Candidate], target: float = 0.95,
              max_p50_ms: float = 2.0) -> tuple[Candidate | None, str]:
    """The cheapest candidate reaching recall >= target, and why it was chosen.

    Cheapest: the smallest serialized size among those with p50 latency <= max_p50_ms (ties
    broken by latency); when none is that fast, the fastest one reaching the target.
    """
    ok = [c for c in candidates if c.skipped is None and c.recall >= target]
    if not ok:
        measured = [c for c in candidates if c.skipped is None]
        if not measured:
            return None, "no candidate could be built on this corpus"
        best = max(measured, key=lambda c: c.recall)
        return None, (f"no candidate reached recall {target}; the best was {best.factory} "
                      f"{best.params} at {best.recall:.3f}; add candidates or raise their "
                      "search parameters")
    fast = [c for c in ok if c.p50_ms <= max_p50_ms]
    if fast:
        c = min(fast, key=lambda c: (c.bytes, c.p50_ms))
        others = f"{len(fast) - 1} other(s) also fit" if len(fast) > 1 else "the only one"
        why = (f"recall@k {c.recall:.3f} >= {target} with p50 {c.p50_ms:.3f} ms <= "
               f"{max_p50_ms} ms, and the least memory ({c.bytes / 2**20:.1f} MiB) of those "
               f"that meet both ({others})")
    else:
        c = min(ok, key=lambda c: c.p50_ms)
        why = (f"recall@k {c.recall:.3f} >= {target}; none reaching it is within "
               f"{max_p50_ms} ms p50, and this is the fastest ({c.p50_ms:.3f} ms)")
    if c.factory == "Flat":
        why += "; exact search needs no tuning and adds without retraining"
    return c, why


def tune_vectors(vectors: np.ndarray, ids: np.ndarray | None = None, *,
                 factories: Sequence[str] = DEFAULT_FACTORIES, k: int = 10,
                 n_queries: int = 1000, target: float = 0.95, max_p50_ms: float = 2.0,
                 seed: int = 0, use_gpu: bool | None = None, latency_queries: int = 200,
                 log: Callable[[str], None] = lambda m: None) -> TuneResult:
    """Measure `factories` on vectors (n, d) float32 (ids (n,) int64, default 0..n-1), with
    up to `n_queries` of the vectors themselves as queries, and recommend one."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    pick = np.sort(np.random.default_rng(seed).permutation(n)[:min(n_queries, n)])
    queries, self_ids = x[pick], ids[pick]
    exact = VectorIndex.create(dim, factory="Flat", encoder_fingerprint="tune", use_gpu=False)
    exact.add(x, ids)
    exact_ids = _search(exact, queries, k, self_ids)
    del exact
    out = []
    for f in dict.fromkeys(expand(f, n, dim) for f in factories):
        log(f"measuring {f} on {n} vectors ...")
        c = measure(x, ids, queries, exact_ids, f, k=k, target=target, self_ids=self_ids,
                    latency_queries=latency_queries, use_gpu=use_gpu)
        out.append(c)
    best, why = recommend(out, target, max_p50_ms)
    return TuneResult(n, dim, k, len(queries), target, max_p50_ms, tuple(out), best, why)


def tune(settings: Settings, *, factories: Sequence[str] = DEFAULT_FACTORIES, k: int = 10,
         n_queries: int = 1000, target: float = 0.95, max_p50_ms: float = 2.0,
         log: Callable[[str], None] = lambda m: None) -> TuneResult:
    """`tune_vectors` on the active build's vectors (read back from its index)."""
    database = settings.open_database()
    try:
        with database.session() as s:
            build = store.active_build(s)
            path = build.path if build else None
    finally:
        database.dispose()
    if path is None:
        raise IndexMismatchError(f"{settings.home}: no active build to tune on; build one with "
                                 "`regen index rebuild --data DIR`")
    try:
        ids, x = VectorIndex.load(Path(path), use_gpu=False).vectors()
    except IndexStoreError as exc:
        raise IndexMismatchError(f"cannot tune on the active build: {exc}; tune needs the "
                                 "exact vectors, so rebuild with --factory Flat first") from exc
    return tune_vectors(x, ids, factories=factories, k=k, n_queries=n_queries, target=target,
                        max_p50_ms=max_p50_ms, use_gpu=settings.use_gpu, log=log)
