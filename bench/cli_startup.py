"""Start-up time of the command line: wall and CPU seconds of `regen --help`, `regen logs` and
`regen index list` (each in a fresh process), and the heavy libraries each one imported.

    python bench/cli_startup.py [--home HOME] [--runs 5]

HOME defaults to a new empty home in a temporary folder (its database is made by a first,
untimed call). The figures are medians over the runs; CPU time (user + sys of the child) is
shown beside wall time because wall time on a shared machine includes waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["logs"], ["index", "list"])
HEAVY = ("torch", "scipy", "faiss", "sklearn", "alembic", "wfdb", "langchain_openai")
# Runs the CLI in-process, then prints which heavy modules it imported.
PROBE = """
import json, runpy, sys
sys.argv = ["regen", *json.loads(sys.argv[1])]
try:
    runpy.run_module("regen", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("\\nHEAVY " + json.dumps([m for m in HEAVY if m in sys.modules]) + "\\n")
"""


def run(args: list[str], home: Path | None) -> tuple[float, float, list[str]]:
    """(wall s, child CPU s, heavy modules imported) of one `regen ARGS` process."""
    full = args + (["--home", str(home)] if home is not None and args != ["--help"] else [])
    code = f"HEAVY = {list(HEAVY)!r}\n" + PROBE
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(full)], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY ")]
    if not last:
        raise SystemExit(f"regen {' '.join(full)} failed:\n{proc.stderr[-2000:]}")
    return wall, cpu, json.loads(last[-1][6:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = a.home or Path(tmp) / "home"
        run(["logs"], home)                    # makes (migrates) a new home's database
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
              f"median of {a.runs} runs")
        for args in COMMANDS:
            got = [run(args, home) for _ in range(a.runs)]
            wall = statistics.median(g[0] for g in got)
            cpu = statistics.median(g[1] for g in got)
            heavy = ",".join(got[-1][2]) or "none"
            print(f"regen {' '.join(args):<11} wall {wall:5.2f} s  cpu {cpu:5.2f} s  "
                  f"heavy imports: {heavy}")


if __name__ == "__main__":
    main()
