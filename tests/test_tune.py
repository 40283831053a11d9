"""Index choice by measurement: recall against an exact oracle, the search-parameter sweep, and
the recommendation rule, on small synthetic data and on a real home."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index import exact_search, set_threads
from regen import load_ptbxl, load_settings
from regen.cli import app
from regen.rebuild import rebuild
from regen.tune import Candidate, expand, measure, nlist_for, pq_m_for, recommend, tune_vectors

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"


def clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 3) -> np.ndarray:
    """(n, dim) unit vectors around random centres, like embeddings of similar recordings."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """Building and batch search on one thread: on a busy CI machine, threads waiting for each
    other at OpenMP barriers make small indexes ten times slower to train."""
    before = set_threads(1)
    yield
    set_threads(before)


def test_sizes_for_the_corpus():
    assert nlist_for(10_000) == 400 and nlist_for(1_000_000) == 4000 and nlist_for(1) == 4
    assert pq_m_for(128) == 32 and pq_m_for(96) == 24 and 30 % pq_m_for(30) == 0
    assert expand("IVF{n},PQ{m}x8,RFlat", 10_000, 128) == "IVF400,PQ32x8,RFlat"


def test_flat_against_the_numpy_oracle_reaches_recall_one():
    x = clustered(1500)
    ids = 1000 + 7 * np.arange(len(x), dtype=np.int64)
    q = np.arange(0, 1500, 15)
    # Oracle: exact neighbours in float64 numpy, the query itself left out.
    _, pos = exact_search(x, x[q], 11)
    oracle = np.array([[p for p in row if p != qi][:10] for row, qi in zip(pos, q)])
    c = measure(x, ids, x[q], ids[oracle], "Flat", self_ids=ids[q])
    assert c.recall == 1.0 and c.params == {} and c.skipped is None
    assert c.bytes >= x.nbytes and c.build_s >= 0 and 0 < c.p50_ms <= c.p99_ms and c.qps > 0


def test_tune_reaches_the_target_and_recommends():
    x = clustered(3000)
    res = tune_vectors(x, n_queries=300, target=0.95, latency_queries=50)
    by = {c.factory: c for c in res.candidates}
    assert list(by) == ["Flat", "HNSW32", "IVF219,Flat", "IVF219,PQ8x8np,RFlat"]
    assert by["Flat"].recall == 1.0
    assert all(c.recall >= 0.95 for c in res.candidates), res.candidates
    assert "efSearch" in by["HNSW32"].params and "nprobe" in by["IVF219,Flat"].params
    assert by["IVF219,PQ8x8np,RFlat"].params["k_factor_rf"] > 1
    assert res.recommended is not None and res.recommended.recall >= 0.95
    assert "recall@k" in res.reason
    json.dumps(res.to_json())


def test_recommend_rule():
    def cand(f: str, recall: float, p50: float, mb: float) -> Candidate:
        return Candidate(f, recall=recall, p50_ms=p50, p99_ms=p50 * 2, bytes=int(mb * 2**20))

    flat, hnsw, ivf = cand("Flat", 1.0, 1.5, 100), cand("HNSW32", 0.97, 0.2, 160), \
        cand("IVF,Flat", 0.96, 0.3, 104)
    # Everyone is within the 2 ms budget: the least memory wins, and exact search is it.
    best, why = recommend([flat, hnsw, ivf])
    assert best is flat and "exact search" in why
    # Flat is too slow at scale: the smaller of the two fast ones.
    best, _ = recommend([cand("Flat", 1.0, 30, 100), hnsw, ivf])
    assert best is ivf
    # Below the recall target does not count, however cheap; skipped ones are ignored.
    cheap = cand("IVF,PQ", 0.80, 0.1, 10)
    best, _ = recommend([cheap, hnsw, Candidate("X", skipped="too small")])
    assert best is hnsw
    # Nothing within the budget: the fastest that reaches the target.
    best, why = recommend([cand("Flat", 1.0, 30, 100), cand("HNSW32", 0.99, 5, 160)])
    assert best.factory == "HNSW32" and "fastest" in why
    best, why = recommend([cheap])
    assert best is None and "no candidate reached" in why


def test_tune_command_on_a_real_home(make_home):
    home = make_home("home")
    corpus = load_ptbxl(SAMPLE, folds="1-4")
    rebuild(load_settings(home), corpus, data_source="sample", progress=False)
    out = CliRunner().invoke(app, ["index", "tune", "--home", str(home), "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == len(corpus) and res["dim"] == 128
    by = {c["factory"]: c for c in res["candidates"]}
    assert by["Flat"]["recall"] == 1.0
    assert "at least 256 vectors" in by["IVF46,PQ32x8np,RFlat"]["skipped"]   # too few to train
    assert res["recommended"]["recall"] >= 0.95
    human = CliRunner().invoke(app, ["index", "tune", "--home", str(home), "--factory",
                                     "Flat", "--factory", "HNSW16"])
    assert "recommended: Flat" in human.stdout and "apply with: regen index rebuild" in human.stdout


def test_tune_needs_an_active_build(tmp_path):
    from regen import IndexMismatchError
    from regen.tune import tune

    with pytest.raises(IndexMismatchError, match="no active build"):
        tune(load_settings(tmp_path))
