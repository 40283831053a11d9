"""Pacemaker spikes on PTB-XL's 500 Hz records: the measured spike (`regen.measure.pacing_spike`)
of paced (SCP code PACE) and unpaced ECGs, per split, against the cut PACING_SPIKE_MV.

    python bench/pacing.py --data PTBXL [--folds 1-8] [--report-folds 9]

The cut was chosen on --folds (the geometric middle between the largest unpaced and the smallest
paced spike there); --report-folds only report.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from regen.corpus import load_ptbxl
from regen.measure import PACING_SPIKE_MV, measure
from regen.reader import read_ecg


def spikes(data: Path, folds: str) -> tuple[list[tuple[str, float]], list[float]]:
    """(paced: (key, spike) each, unpaced spikes) for the folds' records with a 500 Hz file."""
    paced, other = [], []
    for r in load_ptbxl(data, folds=folds, rate=500):
        if not Path(r.path + ".hea").exists():
            continue
        v = measure(read_ecg(r.path)).pacing_spike_mv
        if v is None:
            continue
        (paced.append((r.key, v)) if "PACE" in r.scp else other.append(v))
    return paced, other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    ap.add_argument("--report-folds", default="9")
    args = ap.parse_args()
    for role, folds in (("chose the cut", args.folds), ("report only", args.report_folds)):
        paced, other = spikes(args.data, folds)
        over = sum(v >= PACING_SPIKE_MV for v in other)
        print(f"folds {folds} ({role}): {len(other)} unpaced, largest spike {max(other):.3f} mV, "
              f"{over} at or over the cut {PACING_SPIKE_MV}; paced: "
              + ", ".join(f"{k} {v:.3f} mV" for k, v in paced))
        if role == "chose the cut" and paced:
            lo, hi = max(other), min(v for _, v in paced)
            print(f"  the gap's geometric middle: {math.sqrt(lo * hi):.2f} mV")


if __name__ == "__main__":
    main()
