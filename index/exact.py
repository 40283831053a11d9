"""Brute-force search in numpy, the oracle approximate indexes are measured against.

Also the input checks `VectorIndex` shares with it, so both reject the same bad arrays with
the same messages.
"""

from __future__ import annotations

import numpy as np

from index.manifest import METRICS, IndexStoreError

# Rows of queries scored at once: bounds the (rows, n) score matrix to ~8 MB per 1000 vectors.
_QUERY_CHUNK = 1024


def as_vectors(
    vectors: np.ndarray, dim: int | None, name: str, *, allow_1d: bool = False
) -> np.ndarray:
    """`vectors` as C-contiguous (n, dim) float32, or IndexStoreError saying what is wrong.

    Any float dtype is cast; `dim` None accepts any width; with `allow_1d` a (dim,) vector is
    read as (1, dim).
    """
    x = np.asarray(vectors)
    if allow_1d and x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        shape = "(dim,) or (n, dim)" if allow_1d else "(n, dim)"
        raise IndexStoreError(f"{name} has shape {x.shape}; expected {shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise IndexStoreError(
            f"{name} has dtype {x.dtype}; expected float32 (other float dtypes are cast)"
        )
    if dim is not None and x.shape[1] != dim:
        raise IndexStoreError(
            f"{name} has dimension {x.shape[1]} (shape {x.shape}); the index holds {dim}-d "
            "vectors, so use the encoder the index was built with"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise IndexStoreError(
            f"{name} has {int(bad.sum())} NaN or infinite values in {rows.size} rows, e.g. row "
            f"{int(rows[0])}; expected finite values, so drop or fix those rows"
        )
    return x


def as_ids(ids: np.ndarray, name: str) -> np.ndarray:
    """`ids` as C-contiguous (n,) int64, each >= 0, or IndexStoreError saying what is wrong."""
    keys = np.asarray(ids)
    if keys.ndim != 1:
        raise IndexStoreError(f"{name} has shape {keys.shape}; expected (n,)")
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(keys.dtype, np.integer):
        raise IndexStoreError(f"{name} has dtype {keys.dtype}; expected int64")
    if keys.dtype == np.uint64 and int(keys.max()) > np.iinfo(np.int64).max:
        raise IndexStoreError(f"{name} has values up to {int(keys.max())}; expected < 2**63")
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if int(keys.min()) < 0:
        raise IndexStoreError(
            f"{name} contains {int(keys.min())}; expected ids >= 0 (-1 marks a missing result)"
        )
    return keys


def check_k(k: int) -> None:
    """Raise IndexStoreError unless `k` is a positive int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise IndexStoreError(f"k is {k!r}; expected a positive int such as 10")


def exact_search(
    corpus: np.ndarray, queries: np.ndarray, k: int, metric: str = "ip"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `corpus` (n, d) for `queries` (m, d) or (d,), best first.

    Returns (scores (m, k) float32, positions (m, k) int64): positions are row numbers in
    `corpus`, not ids. Scores are inner products for "ip" and squared L2 distances for "l2",
    computed in float64, the same quantities `VectorIndex.search` returns. Where k > n the
    extra positions are -1 with score -inf ("ip") or +inf ("l2").
    """
    if metric not in METRICS:
        raise IndexStoreError(f"metric is {metric!r}; expected one of {list(METRICS)}")
    check_k(k)
    c = as_vectors(corpus, None, "corpus").astype(np.float64)
    q = as_vectors(queries, c.shape[1], "queries", allow_1d=True).astype(np.float64)
    n, found = c.shape[0], min(k, c.shape[0])
    missing = -np.inf if metric == "ip" else np.inf
    scores = np.full((q.shape[0], k), missing, dtype=np.float32)
    positions = np.full((q.shape[0], k), -1, dtype=np.int64)
    if found == 0:
        return scores, positions
    corpus_sq = (c * c).sum(axis=1)
    for start in range(0, q.shape[0], _QUERY_CHUNK):
        block = q[start : start + _QUERY_CHUNK]
        if metric == "ip":
            cost = -(block @ c.T)  # (rows, n), smaller is better
        else:
            cost = (block * block).sum(axis=1)[:, None] - 2.0 * (block @ c.T) + corpus_sq
        top = np.argpartition(cost, found - 1, axis=1)[:, :found] if found < n else None
        if top is None:
            top = np.broadcast_to(np.arange(n), cost.shape)
        top_cost = np.take_along_axis(cost, top, axis=1)
        order = np.argsort(top_cost, axis=1, kind="stable")
        rows = slice(start, start + block.shape[0])
        positions[rows, :found] = np.take_along_axis(top, order, axis=1)
        best = np.take_along_axis(top_cost, order, axis=1)
        scores[rows, :found] = -best if metric == "ip" else np.maximum(best, 0.0)
    return scores, positions


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean over queries of |approx ∩ exact| / |exact|, with -1 entries ignored.

    Both are (m, k) int ids (or positions) with unique values per row. |exact| counts the
    non -1 entries, so a k larger than the corpus does not lower recall; queries with no exact
    neighbours are skipped, and recall is 1.0 if every query has none.
    """
    approx, exact = np.asarray(approx_ids), np.asarray(exact_ids)
    if approx.ndim != 2 or approx.shape != exact.shape:
        raise IndexStoreError(
            f"approx_ids has shape {approx.shape} and exact_ids {exact.shape}; expected both "
            "(m, k) with the same m and k"
        )
    hits = np.zeros(approx.shape[0], dtype=np.int64)
    for start in range(0, approx.shape[0], _QUERY_CHUNK):
        a, e = approx[start : start + _QUERY_CHUNK], exact[start : start + _QUERY_CHUNK]
        # (rows, k, k): approx entry i equals exact entry j; a -1 never counts as a hit.
        match = (a[:, :, None] == e[:, None, :]) & (a != -1)[:, :, None]
        hits[start : start + a.shape[0]] = match.any(axis=2).sum(axis=1)
    wanted = (exact != -1).sum(axis=1)
    has_any = wanted > 0
    if not has_any.any():
        return 1.0
    return float(np.mean(hits[has_any] / wanted[has_any]))
