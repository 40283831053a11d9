"""The measured frontal P-wave axis by PTB-XL rhythm code: where the "not a sinus P wave"
quadrant (`regen.measure.NON_SINUS_P`) falls on real ECGs.

    python bench/p_axis.py --data PTBXL [--folds 1-8]

For every ECG of the folds, `regen.measure.measure` gives the P axis (None where no P wave was
found). The ECGs are grouped by their first rhythm code among AFLT, AFIB, SVTAC, PSVT, PACE,
SBRAD, STACH, SARRH, SR (else "other"), and the table gives, per group, how many have a P axis
and how many of those fall in the non-sinus quadrant, with the axis histogram in 30-degree
bins. The quadrant is the textbook one; this shows what it costs on ECGs coded sinus. Folds 9
and 10 are for reporting only: run it on folds 1-8 to judge the rule.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

RHYTHMS = ("AFLT", "AFIB", "SVTAC", "PSVT", "PACE", "SBRAD", "STACH", "SARRH", "SR")
BINS = np.arange(-180, 181, 30)


def rhythm(scp: object) -> str:
    codes = set(scp)  # type: ignore[call-overload]
    return next((c for c in RHYTHMS if c in codes), "other")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    args = ap.parse_args()

    from regen.corpus import load_ptbxl
    from regen.measure import NON_SINUS_P, measure, sinus_p_axis
    from regen.reader import read_ecg

    axes: dict[str, list[float | None]] = defaultdict(list)
    for q in load_ptbxl(args.data, folds=args.folds):
        axes[rhythm(q.scp)].append(measure(read_ecg(q.path)).p_axis_deg)
    print(f"folds {args.folds}: frontal P axis by rhythm code; not sinus: "
          f"{NON_SINUS_P[0]:+.0f}..{NON_SINUS_P[1]:+.0f} degrees")
    print(f"{'code':<6} {'ECGs':>5} {'P axis':>6} {'not sinus':>9}  histogram "
          f"{BINS[0]:+d}..{BINS[-1]:+d} by 30")
    for code in (*RHYTHMS, "other"):
        got = [a for a in axes.get(code, []) if a is not None]
        if not axes.get(code):
            continue
        off = sum(not sinus_p_axis(a) for a in got)
        hist = np.histogram(got, BINS)[0].tolist()
        print(f"{code:<6} {len(axes[code]):>5} {len(got):>6} {off:>9}  {hist}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
