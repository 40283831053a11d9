"""Fit the measured conduction model (`regen.measured.conduction_findings`: CRBBB, CLBBB, LAFB
from the QRS duration and shape) on PTB-XL folds 1-8 and print its leave-one-fold-out CV beside
the QRS-duration rule it replaces.

    python bench/conduction_fit.py --data PTBXL [--cache /tmp/cond.npz] [--write]

Targets are the labeller's reading of each ECG's English report (what `regen eval report`
scores). For each label and each L2 weight in the grid, leave-one-fold-out over folds 1-8 gives
out-of-fold probabilities; the L2 with the lowest pooled log loss is kept, the cut is the one
that maximises out-of-fold F1 at it, and the weights are refitted on all of folds 1-8.
`--write` saves them to regen/weights/conduction.json. Fold 9 is never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("CRBBB", "CLBBB", "LAFB")
L2 = (0.1, 1.0, 10.0, 100.0)


def features(data: Path, cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, F), y (N, labels) bool, fold (N,)) for the folds 1-8 ECGs whose QRS and shape
    were measured; the others are counted and dropped."""
    if cache and cache.exists():
        z = np.load(cache)
        return z["x"], z["y"], z["fold"]
    from regen.corpus import load_ptbxl
    from regen.labeller import label_report
    from regen.measure import measure
    from regen.measured import conduction_features
    from regen.reader import read_ecg

    xs, ys, fs, dropped = [], [], [], 0
    for r in load_ptbxl(data, folds="1-8"):
        x = conduction_features(measure(read_ecg(r.path)))
        if x is None:
            dropped += 1
            continue
        labels = label_report(r.report("en"))
        xs.append(x)
        ys.append([lab in labels for lab in LABELS])
        fs.append(int(str(r.split)))
    print(f"{dropped} ECGs without a measured QRS shape left out", file=sys.stderr)
    out = np.array(xs), np.array(ys, dtype=bool), np.array(fs)
    if cache:
        np.savez(cache, x=out[0], y=out[1], fold=out[2])
    return out


def oof(x: np.ndarray, y: np.ndarray, fold: np.ndarray, l2: float) -> np.ndarray:
    from regen.measured import af_logit, fit_af

    p = np.zeros(len(y))
    for f in np.unique(fold):
        tr = fold != f
        w = fit_af(x[tr], y[tr].astype(float), l2)
        p[~tr] = [1 / (1 + np.exp(-af_logit(row, w))) for row in x[~tr]]
    return p


def f1_at(pred: np.ndarray, y: np.ndarray) -> float:
    d = pred.sum() + y.sum()
    return float(2 * (pred & y).sum() / d) if d else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--write", action="store_true",
                    help="save the fitted model to regen/weights/conduction.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from regen.findings import best_f1_threshold
    from regen.measured import fit_af
    from regen.metrics import roc_auc

    x, y, fold = features(args.data, args.cache)
    print(f"folds 1-8: {len(x)} ECGs with the QRS duration and shape measured; out-of-fold "
          "(leave-one-fold-out) against the labeller's reading of each report")
    model = {}
    for j, lab in enumerate(LABELS):
        yj = y[:, j]
        wide = x[:, 0] >= 120
        line = f"{lab:6} {int(yj.sum()):4d} positives; QRS >= 120 ms alone F1 {f1_at(wide, yj):.3f}"
        best = None
        for l2 in L2:
            p = oof(x, yj, fold, l2)
            ll = float(-np.mean(yj * np.log(np.clip(p, 1e-9, 1))
                                + (~yj) * np.log(np.clip(1 - p, 1e-9, 1))))
            cut, f1 = best_f1_threshold(p, yj)
            line += f"; L2 {l2:g}: log loss {ll:.4f} AUC {roc_auc(yj, p):.3f} F1 {f1:.3f}"
            if best is None or ll < best[0]:
                best = (ll, l2, cut, f1)
        assert best is not None
        _, l2, cut, f1 = best
        print(line)
        print(f"  chosen: L2 {l2:g}, cut {cut:.3f} (out-of-fold F1 {f1:.3f})")
        model[lab] = {"weights": list(fit_af(x, yj.astype(float), l2)), "cut": round(cut, 4),
                      "l2": l2, "oof_f1": round(f1, 4), "positives": int(yj.sum())}
    if args.write:
        from regen.measure import QRS_SHAPE, QRS_SHAPE_LEADS
        from regen.measured import CONDUCTION_WEIGHTS

        doc = {"about": "Logistic models of the measured QRS (regen.measured."
                        "conduction_findings), fitted on PTB-XL folds 1-8 by "
                        "python bench/conduction_fit.py --data PTBXL --write",
               "features": ["qrs_ms"] + [f"{lead}:{f}" for lead in QRS_SHAPE_LEADS
                                         for f in QRS_SHAPE],
               "labels": model}
        CONDUCTION_WEIGHTS.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {CONDUCTION_WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
