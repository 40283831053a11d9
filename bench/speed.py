"""Speed and memory of encoding and search, with the exact index as the baseline in the same run.

    python bench/speed.py [--sizes 1000,10000,100000,1000000] [--factories Flat,HNSW32]
                          [--dim 128] [--queries 200] [--encode 512]

Encoding: 10-s 12-lead ECGs per second for the shipped encoder, beside the raw-signal
feature (flatten + z-score) it replaces. Search: for each size and factory, in a fresh child
process (so peak RSS is that configuration's own): build time, p50/p99 single-query latency,
batch QPS, recall@10 against exact search, the index's resident memory (RSS growth while
building) and the process's peak resident memory (vectors, exact baseline and libraries
included). Vectors above the real corpus size are synthetic: unit-norm samples around 2,000
random centres (cluster structure like real embeddings); queries are drawn the same way.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def synthetic(n: int, dim: int, seed: int, centres: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 100_000):        # in chunks: bounded temporary memory
        m = min(100_000, n - s)
        x[s:s + m] = c[rng.integers(0, centres, m)] + 0.6 * rng.normal(size=(m, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def one(size: int, factory: str, dim: int, n_queries: int) -> dict:
    import faiss

    from index import VectorIndex, recall_at_k

    x = synthetic(size, dim, seed=1)
    q = synthetic(n_queries, dim, seed=2)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    vi = VectorIndex.create(dim, factory=factory, encoder_fingerprint="bench")
    vi.add(x, np.arange(size, dtype=np.int64))
    build_s = time.perf_counter() - t0
    index_mb = _rss_mb() - rss0
    if factory.startswith("HNSW"):
        vi.set_search_params(efSearch=64)
    if factory.startswith("IVF"):
        vi.set_search_params(nprobe=16)
    lat = []
    for v in q:
        t1 = time.perf_counter()
        vi.search(v[None], 10)
        lat.append(time.perf_counter() - t1)
    t2 = time.perf_counter()
    _, ids = vi.search(q, 10)
    qps = n_queries / (time.perf_counter() - t2)
    exact = faiss.IndexFlatIP(dim)
    exact.add(x)
    _, e_ids = exact.search(q, 10)
    lat_ms = np.array(lat) * 1e3
    return {"size": size, "factory": factory, "build_s": build_s,
            "p50_ms": float(np.median(lat_ms)), "p99_ms": float(np.percentile(lat_ms, 99)),
            "batch_qps": qps, "recall_at_10": recall_at_k(ids, e_ids), "index_mb": index_mb,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def encode_speed(n: int) -> list[dict]:
    from regen.baselines import RawSignalEmbedder
    from regen.encoder import Encoder
    from regen.prepare import Prepared
    from regen.settings import DEFAULT_ENCODER

    enc = Encoder.load(DEFAULT_ENCODER)
    rng = np.random.default_rng(0)
    items = [Prepared(rng.normal(size=(1, 12, enc.cfg.window)).astype(np.float32) * 0.3,
                      np.ones(12, bool), np.zeros(1, np.int64), enc.cfg.fs, str(i))
             for i in range(n)]
    enc.embed(items[:64])                       # warm-up
    out = []
    for name, model in (("regen encoder", enc), ("raw-signal features", RawSignalEmbedder())):
        t0 = time.perf_counter()
        model.embed(items, batch_size=256)
        out.append({"what": name, "ecgs_per_s": n / (time.perf_counter() - t0)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--factories", default="Flat,HNSW32")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--encode", type=int, default=512, help="ECGs for the encoding benchmark")
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "FACTORY"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write all rows here")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.dim, args.queries)))
        return
    rows = []
    if args.encode:
        enc = encode_speed(args.encode)
        print(f"{'encoding (10-s 12-lead)':<28}{'ECGs/s':>10}")
        for r in enc:
            print(f"{r['what']:<28}{r['ecgs_per_s']:>10.0f}")
        rows += enc
    print(f"\n{'size':>9} {'factory':<14}{'build s':>9}{'p50 ms':>9}{'p99 ms':>9}{'QPS':>9}"
          f"{'recall@10':>10}{'index MB':>9}{'peak MB':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        for factory in args.factories.split(","):
            proc = subprocess.run([sys.executable, __file__, "--one", str(size), factory,
                                   "--dim", str(args.dim), "--queries", str(args.queries)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{size:>9} {factory:<14} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{size:>9} {factory:<14}{r['build_s']:>9.2f}{r['p50_ms']:>9.3f}"
                  f"{r['p99_ms']:>9.3f}{r['batch_qps']:>9.0f}{r['recall_at_10']:>10.3f}"
                  f"{r['index_mb']:>9.0f}{r['peak_rss_mb']:>9.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
