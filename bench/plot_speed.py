"""How long `regen plot` takes: a 12-lead 10 s ECG (target < 1 s) and a 30-minute record with
its window marked (target < 3 s).

    python bench/plot_speed.py [--repeats 3] [--json]

Records: the bundled sample's 01469_lr (12 leads, 10 s, 100 Hz) and two 30-minute WFDB
records written to a temporary folder by tiling it: 12 leads at 500 Hz (PTB-XL's full rate,
the heaviest case) and 2 leads at 360 Hz (a MIT-BIH-like Holter excerpt), drawn from 600 s.
For each: the whole command (`python -m regen plot REC -o X.png`, a fresh process: start-up
and imports included), and in one process the read, the first drawing (matplotlib's import
and font cache included) and a warm drawing. Medians over --repeats. The command's CPU time
(user + system) is printed beside its wall time with the load average: on a shared machine
the wall time moves with the load, the CPU time far less.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "ptbxl-sample" / "records100" / "01000" / "01469_lr"
TARGETS = {"12-lead 10 s": 1.0, "30 min, 12 leads 500 Hz": 3.0, "30 min, 2 leads 360 Hz": 3.0}


def long_record(folder: Path, name: str, leads: int, fs: int, minutes: float = 30) -> Path:
    """A WFDB record of `minutes` made by tiling the sample (resampled to `fs`)."""
    import wfdb
    from scipy.signal import resample_poly

    from regen.reader import read_ecg

    ecg = read_ecg(SAMPLE)
    x = resample_poly(ecg.signal[:leads].astype(np.float64), fs, int(ecg.fs), axis=1)
    n = int(minutes * 60 * fs)
    sig = np.tile(x, (1, n // x.shape[1] + 1))[:, :n].T
    wfdb.wrsamp(name, fs=fs, units=["mV"] * leads, sig_name=list(ecg.leads[:leads]),
                p_signal=sig, fmt=["16"] * leads, adc_gain=[1000.0] * leads,
                baseline=[0] * leads, write_dir=str(folder))
    return folder / name


def command_s(rec: Path, out: Path, start: float) -> tuple[float, float]:
    """(wall, CPU) seconds of the whole command; CPU time (user + system of the child) moves
    far less than wall time on a shared machine, so it stands for a quiet machine's wall."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "regen", "plot", str(rec), "-o", str(out),
                           "--start", f"{start:g}"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(done.stderr)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def in_process_s(rec: Path, start: float) -> dict[str, float]:
    """read, first draw (cold) and warm draw, in a fresh process (so 'cold' is cold)."""
    code = (
        "import json, time, sys\n"
        "t0 = time.perf_counter()\n"
        "from regen.reader import read_ecg\n"
        "from regen.plot import plot_ecg\n"
        "t1 = time.perf_counter(); e = read_ecg(sys.argv[1]); t2 = time.perf_counter()\n"
        "plot_ecg(e, start_s=float(sys.argv[2])); t3 = time.perf_counter()\n"
        "plot_ecg(e, start_s=float(sys.argv[2])); t4 = time.perf_counter()\n"
        "print(json.dumps({'import_s': t1 - t0, 'read_s': t2 - t1, 'first_draw_s': t3 - t2,"
        " 'warm_draw_s': t4 - t3}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(rec), str(start)],
                          capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="regen-plot-bench-") as tmp:
        folder = Path(tmp)
        cases = [("12-lead 10 s", SAMPLE, 0.0),
                 ("30 min, 12 leads 500 Hz", long_record(folder, "long12", 12, 500), 600.0),
                 ("30 min, 2 leads 360 Hz", long_record(folder, "long2", 2, 360), 600.0)]
        for name, rec, start in cases:
            cmd = [command_s(rec, folder / "x.png", start) for _ in range(args.repeats)]
            parts = [in_process_s(rec, start) for _ in range(args.repeats)]
            row = {"record": name, "target_s": TARGETS[name],
                   "command_s": statistics.median(c[0] for c in cmd),
                   "command_cpu_s": statistics.median(c[1] for c in cmd),
                   **{k: statistics.median(p[k] for p in parts) for k in parts[0]},
                   "load_average": os.getloadavg()[0]}
            rows.append(row)
            if not args.json:
                print(f"{name:26s} command {row['command_s']:.2f} s wall, "
                      f"{row['command_cpu_s']:.2f} s CPU (target < "
                      f"{row['target_s']:g} s; in one process: imports {row['import_s']:.2f}, read "
                      f"{row['read_s']:.2f}, first drawing {row['first_draw_s']:.2f}, warm "
                      f"drawing {row['warm_draw_s']:.2f})  load {row['load_average']:.1f}",
                      flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
