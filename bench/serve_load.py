"""Load on `regen serve` over loopback: N clients x M report requests (by path, unseen fold-9
records of the sample), against the FastAPI server and, in the same run, the first stdlib server
(`regen.server_stdlib`, the baseline issue 12 measured at 51 req/s, p50 140 ms, p99 312 ms);
"fastapi-2proc" is the FastAPI server with two worker processes (`--processes 2`).
Also /health latency while the report load runs. Each server is its own process; the clients are
threads here. Bounded: at most 32 clients x 500 requests, and --max-s seconds per phase.

    python bench/serve_load.py [--home HOME] [--clients 8] [--requests 50] [--json]

Without --home a home is built from the bundled sample (folds 1-8, about 5 s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "ptbxl-sample"
SERVERS = {
    "fastapi": "from regen.server import serve; serve({home!r}, '127.0.0.1', {port}, "
               "data_roots={roots!r})",
    # one worker process per core of this machine's two (setting serve_processes)
    "fastapi-2proc": "from regen.server import serve; serve({home!r}, '127.0.0.1', {port}, "
                     "data_roots={roots!r}, serve_processes=2)",
    "stdlib": "from regen.server_stdlib import serve; serve({home!r}, '127.0.0.1', {port})",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, home: Path, port: int) -> subprocess.Popen:
    code = SERVERS[kind].format(home=str(home), port=port, roots=str(SAMPLE))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{kind} server did not come up on port {port}")


def client(port: int, bodies: list[bytes], out: list[float], errors: list[int],
           stop_at: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for body in bodies:
        if time.monotonic() > stop_at:
            return
        t0 = time.perf_counter()
        conn.request("POST", "/v1/report", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - t0)
        if resp.status != 200:
            errors.append(resp.status)


def health_probe(port: int, out: list[float], done: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not done.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        out.append(time.perf_counter() - t0)
        time.sleep(0.02)


def run(kind: str, home: Path, records: list[str], clients: int, requests: int,
        max_s: float) -> dict[str, float | int | str]:
    port = free_port()
    proc = start(kind, home, port)
    try:
        warm: list[float] = []
        if "proc" in kind:   # /health answers once one worker is up: let the others load too
            time.sleep(5)
        warmers = [threading.Thread(target=client, args=(
            port, [json.dumps({"ecg": {"path": records[0]}}).encode()] * 3, warm, [],
            time.monotonic() + 60)) for _ in range(clients)]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
        lat: list[float] = []
        errors: list[int] = []
        health: list[float] = []
        done = threading.Event()
        stop_at = time.monotonic() + max_s
        threads = [threading.Thread(target=client, args=(
            port, [json.dumps({"ecg": {"path": records[(c * requests + i) % len(records)]}})
                   .encode() for i in range(requests)], lat, errors, stop_at))
            for c in range(clients)]
        probe = threading.Thread(target=health_probe, args=(port, health, done))
        t0 = time.perf_counter()
        probe.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done.set()
        probe.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ms = np.asarray(lat) * 1e3
    return {"server": kind, "clients": clients, "requests": len(lat), "errors": len(errors),
            "req_per_s": round(len(lat) / wall, 1), "p50_ms": round(float(np.median(ms)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "health_p99_ms": round(float(np.percentile(np.asarray(health) * 1e3, 99)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="a built regen home (default: build the sample)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50, help="per client")
    ap.add_argument("--servers", default="fastapi,fastapi-2proc,stdlib")
    ap.add_argument("--max-s", type=float, default=120.0, help="time cap per server")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    clients, requests = min(args.clients, 32), min(args.requests, 500)
    sys.path.insert(0, str(ROOT))
    from regen import load_ptbxl, load_settings

    records = [str(r.path) for r in load_ptbxl(SAMPLE, folds="9")]
    with tempfile.TemporaryDirectory(prefix="regen-bench-") as tmp:
        home = args.home
        if home is None:
            from regen.rebuild import rebuild

            home = Path(tmp)
            rebuild(load_settings(home), load_ptbxl(SAMPLE, folds="1-8"), data_source="sample",
                    progress=False)
        rows = [run(kind, home, records, clients, requests, args.max_s)
                for kind in args.servers.split(",")]
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['server']:<8} {row['clients']} clients: {row['requests']} reports "
                  f"({row['errors']} errors)  {row['req_per_s']} req/s  p50 {row['p50_ms']} ms  "
                  f"p99 {row['p99_ms']} ms  /health p99 {row['health_p99_ms']} ms")


if __name__ == "__main__":
    main()
