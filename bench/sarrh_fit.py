"""Fit the measured sinus-arrhythmia score (`regen.measured.SARRH_WEIGHTS`) on PTB-XL folds 1-8
and print its leave-one-fold-out CV beside the RR range alone.

    python bench/sarrh_fit.py --data PTBXL [--cache /tmp/sarrh/feat.npz]

Each ECG with a P wave that could be sinus gives two rows, its 12-lead and its lead-II
measurements (`regen.measure`), so one model serves both; SARRH from scp_codes (the
cardiologists' code, not the report text). CV: for each of folds 1-8, fit on the other seven and
score the held-out fold, for each feature set and L2 weight in the grid; the set and weight
with the lowest pooled CV log loss are fitted on all of folds 1-8 (the weights to copy into
SARRH_WEIGHTS). Which cut states it, and how it meets the retrieved rhythm, is chosen by
bench/measured_vs_retrieved.py (the SARRH rows). Fold 9 is never read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# bench/ is on sys.path when this runs as a script
from af_fit import auc, choose, corpus_rows, weights_on

from regen.measured import SARRH_FEATURES, sarrh_features

SETS = {"RR range": (5,),
        "RR (irregularity, nRMSSD, pNN50, turning points)": (0, 1, 2, 3),
        "RR + range": (0, 1, 2, 3, 5),
        "all six": (0, 1, 2, 3, 4, 5)}
L2 = (0.1, 1.0, 10.0, 100.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, help="features saved here / read from here")
    args = ap.parse_args()
    x, y, fold, lead, _ = corpus_rows(args.data, sarrh_features, "SARRH", args.cache)
    print(f"folds 1-8: {len(y)} rows with a P wave ({int((lead == 0).sum())} 12-lead, "
          f"{int((lead == 1).sum())} lead II), SARRH {int(y.sum())}")
    for name, sel in (("12-lead", lead == 0), ("lead II", lead == 1)):
        print(f"  baseline RR range alone: {name} AUC {auc(x[sel, 5], y[sel]):.3f}")
    name, cols, l2 = choose(x, y, fold, lead, SETS, L2, cuts=(0.2, 0.5))
    print(f"chosen (lowest CV log loss): {name}, L2 {l2:g}")
    print(f"SARRH_WEIGHTS = {weights_on(x, y, cols, l2)}  # {SARRH_FEATURES} + intercept, "
          "folds 1-8")
    print(f"SARRH_L2 = {l2:g}")


if __name__ == "__main__":
    main()
