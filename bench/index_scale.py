"""Index choices at hospital scale, with the exact index as the baseline in the same run.

    python bench/index_scale.py [--sizes 10000,100000,1000000] [--dim 128] [--queries 1000]
                                [--data data/ptbxl-sample] [--repeat 4] [--json OUT]

Search: for each size (each in a fresh child process, so its peak RSS is its own) and each of
Flat (exact), HNSW32 and IVF-PQ with exact re-ranking (IVF{4 sqrt N},PQ{d/4}x8np,RFlat):
recall@10 against the exact index, p50/p99 single-query latency (one query at a time on one
FAISS thread, as a server runs concurrent queries), batch QPS (all queries at once, every
thread), build time (train + add) and memory (the serialized index: what it holds in RAM).
HNSW's efSearch and IVF's nprobe are raised until recall@10 >= 0.95 and reported (regen.tune
does the measuring, as `regen index tune` does on a real corpus). Vectors are synthetic with
cluster structure (bench/speed.py's `synthetic`); queries are drawn the same way.

Rebuild: ECGs/s of the rebuild job (read + prepare + embed + index + database) on the real
corpus of a PTB-XL folder, repeated `--repeat` times under distinct keys, with 1 and 2
processes reading and preparing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

TARGET_RECALL, TARGET_P50_MS, TARGET_MB = 0.95, 2.0, 1024


def factories(n: int, dim: int) -> list[str]:
    from regen.tune import expand

    return ["Flat", "HNSW32", expand("IVF{n},PQ{m}x8np,RFlat", n, dim)]


def one_size(n: int, dim: int, n_queries: int, latency_queries: int) -> list[dict]:
    """Every factory at one size; runs in its own process."""
    from speed import synthetic

    from index import VectorIndex
    from regen.tune import measure

    t0 = time.perf_counter()
    x = synthetic(n, dim, seed=1)
    q = synthetic(n_queries, dim, seed=2)
    ids = np.arange(n, dtype=np.int64)
    print(f"  [{n}] data in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    exact = VectorIndex.create(dim, factory="Flat", encoder_fingerprint="bench", use_gpu=False)
    exact.add(x, ids)
    exact_ids = exact.search(q, 10)[1]
    del exact
    rows = []
    for f in factories(n, dim):
        t1 = time.perf_counter()
        c = measure(x, ids, q, exact_ids, f, k=10, target=TARGET_RECALL,
                    latency_queries=latency_queries)
        rows.append({"size": n, **c.to_json(),
                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        print(f"  [{n}] {f}: {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
    return rows


def rebuild_throughput(data: Path, repeat: int, workers: int, chunk: int) -> dict:
    from regen import load_ptbxl, load_settings
    from regen.rebuild import rebuild

    base = load_ptbxl(data)
    records = [replace(r, key=f"{r.key}#{i}") for i in range(repeat) for r in base]
    with tempfile.TemporaryDirectory() as home:
        res = rebuild(load_settings(home), records, data_source="bench", workers=workers,
                      chunk=chunk, progress=False)
    t = res.timings
    return {"workers": workers, "ecgs": res.count, "total_s": t["total_s"],
            "ecgs_per_s": res.count / t["total_s"], "read_wait_s": t["read_s"],
            "embed_s": t["embed_s"], "index_s": t["index_s"]}


def _print_search(r: dict) -> None:
    if r.get("skipped"):
        print(f"{r['size']:>9} {r['factory']:<24} skipped: {r['skipped']}")
        return
    params = ",".join(f"{k}={v:g}" for k, v in r["params"].items()) or "- (exact)"
    print(f"{r['size']:>9} {r['factory']:<24} {params:<24} {r['recall']:>7.3f} "
          f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['qps']:>9.0f} {r['build_s']:>9.1f} "
          f"{r['bytes'] / 2**20:>8.0f} {r['peak_rss_mb']:>8.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000, help="queries for recall and QPS")
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--data", type=Path, default=Path("data/ptbxl-sample"),
                    help="PTB-XL folder for the rebuild throughput ('' to skip)")
    ap.add_argument("--repeat", type=int, default=4, help="times the corpus is repeated")
    ap.add_argument("--chunk", type=int, default=256, help="rebuild chunk size")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write all rows here")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.dim, args.queries, args.latency_queries)))
        return
    import faiss

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, "
          f"FAISS {faiss.__version__} ({faiss.omp_get_max_threads()} threads), dim {args.dim}, "
          f"{args.queries} queries, target recall@10 >= {TARGET_RECALL}")
    print(f"\n{'size':>9} {'factory':<24} {'search params':<24} {'recall':>7} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'batch QPS':>9} {'build s':>9} {'index MB':>8} {'peak MB':>8}")
    rows: list[dict] = []
    for size in (int(s) for s in args.sizes.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--one", str(size), "--dim",
                               str(args.dim), "--queries", str(args.queries),
                               "--latency-queries", str(args.latency_queries)],
                              stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"{size:>9} failed with exit code {proc.returncode}")
            continue
        for r in json.loads(proc.stdout.strip().splitlines()[-1]):
            rows.append(r)
            _print_search(r)
    for size in sorted({r["size"] for r in rows}):
        ok = [r["factory"] for r in rows if r["size"] == size and not r.get("skipped")
              and r["recall"] >= TARGET_RECALL and r["p50_ms"] < TARGET_P50_MS
              and r["bytes"] < TARGET_MB * 2**20]
        print(f"at {size}: recall >= {TARGET_RECALL}, p50 < {TARGET_P50_MS} ms and index "
              f"< {TARGET_MB} MB met by {', '.join(ok) or 'none'}")
    if str(args.data) and args.data.exists():
        print(f"\nrebuild of {args.data} x{args.repeat} (chunk {args.chunk})")
        print(f"{'workers':>7} {'ECGs':>6} {'total s':>8} {'ECGs/s':>8} {'read wait s':>11} "
              f"{'embed s':>8} {'index s':>8}")
        for workers in (1, 2):
            r = rebuild_throughput(args.data, args.repeat, workers, args.chunk)
            rows.append({"rebuild": True, **r})
            print(f"{r['workers']:>7} {r['ecgs']:>6} {r['total_s']:>8.1f} "
                  f"{r['ecgs_per_s']:>8.1f} {r['read_wait_s']:>11.1f} {r['embed_s']:>8.1f} "
                  f"{r['index_s']:>8.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
