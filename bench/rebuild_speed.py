"""Rebuild throughput of a real corpus: one process (the baseline), two local processes, and
the cluster engines (Dask, Ray) on local clusters, each a full `regen index rebuild` into a
fresh home, in the same run.

    python bench/rebuild_speed.py --data ../shared/data/ptbxl [--folds 1-8] [--rate 100]
                                  [--workers 2] [--chunk 256] [--repeat 2]
                                  [--engines local1,local2,dask,dask-warm,ray,ray-warm]

Each configuration runs as a child process (`regen index rebuild --json`) into a fresh home.
Throughput is ECGs / the job's own total time (median of --repeat runs); "embed wall" is the
embedding step alone (what the engine schedules); "command" adds interpreter start-up, imports
and starting the cluster. "-warm" configurations send the job to a cluster that is already
running (after one untimed warm-up job), as a standing cluster would serve rebuild after
rebuild; the others start and stop a local cluster inside each job. Every configuration's
vectors are compared with the baseline's ("same vectors" must say yes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

CONFIGS = {
    "local1": ("local", 1, "1 process (baseline)"),
    "local2": ("local", None, "local, {w} reader processes"),
    "dask": ("dask", None, "Dask, a new local cluster of {w} workers per job"),
    "dask-warm": ("dask", None, "Dask, a running cluster of {w} workers"),
    "ray": ("ray", None, "Ray, a new local cluster of {w} CPUs per job"),
    "ray-warm": ("ray", None, "Ray, a running cluster of {w} CPUs"),
}


@contextmanager
def standing_cluster(name: str, workers: int) -> Iterator[str]:
    """A cluster that outlives the jobs (as a hospital's would): its address. One warm-up job is
    run on it by the caller before timing, so workers have imported torch and the encoder."""
    if name == "dask-warm":
        import logging

        from distributed import LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster:
            yield cluster.scheduler_address
        return
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def run_one(args: argparse.Namespace, engine: str, workers: int, home: Path,
            address: str = "") -> dict:
    cmd = [sys.executable, "-m", "regen", "index", "rebuild", "--data", str(args.data),
           "--folds", args.folds, "--rate", str(args.rate), "--home", str(home),
           "--chunk", str(args.chunk), "--engine", engine, "--workers", str(workers),
           "--json"] + (["--engine-address", address] if address else [])
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{engine}: rebuild failed:\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "count": res["count"], "timings": res["timings"],
            "path": res["path"]}


def vectors(path: str) -> tuple[np.ndarray, np.ndarray]:
    from index import VectorIndex

    return VectorIndex.load(path).vectors()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/ptbxl-sample"))
    ap.add_argument("--folds", default="1-8")
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--engines", default="local1,local2,dask,dask-warm,ray,ray-warm")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    rows, base = [], None
    root = Path(tempfile.mkdtemp(prefix="regen-bench-rebuild-"))
    try:
        for name in args.engines.split(","):
            engine, workers, label = CONFIGS[name]
            workers = workers or args.workers
            runs = []
            with (standing_cluster(name, workers) if name.endswith("-warm")
                  else nullcontext("")) as address:
                if address:
                    run_one(args, engine, workers, root / f"{name}-warmup", address)
                for r in range(args.repeat):
                    home = root / f"{name}-{r}"
                    runs.append(run_one(args, engine, workers, home, address))
                    print(f"  {name} run {r + 1}: {runs[-1]['wall_s']:.1f} s", file=sys.stderr)
            got = vectors(runs[0]["path"])
            if base is None:
                base = got
            same = all(np.array_equal(a, b) for a, b in zip(got, base))
            n = runs[0]["count"]
            total = statistics.median(x["timings"]["total_s"] for x in runs)
            embed = statistics.median(x["timings"]["embed_wall_s"] for x in runs)
            wall = statistics.median(x["wall_s"] for x in runs)
            rows.append({"config": label.format(w=workers), "ecgs": n,
                         "ecg_per_s": n / total, "job_s": total, "embed_wall_s": embed,
                         "command_s": wall, "same_vectors": same})
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nrebuild of {args.data} folds {args.folds} at {args.rate} Hz, chunk {args.chunk}, "
          f"median of {args.repeat}")
    print("| configuration | ECGs | ECG/s (job) | job s | embed wall s | command s (with "
          "start-up) | same vectors as baseline |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['ecgs']} | {r['ecg_per_s']:.0f} | {r['job_s']:.1f} | "
              f"{r['embed_wall_s']:.1f} | {r['command_s']:.1f} | "
              f"{'yes' if r['same_vectors'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
