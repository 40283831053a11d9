"""Fit the measured morphology models (`regen.measured.morphology_findings`: bundle-branch and
fascicular blocks, Q waves and infarction, hypertrophy, ST and T changes from the median beat's
shape) on PTB-XL folds 1-8 and print their leave-one-fold-out CV beside the QRS-duration rule.

    python bench/morphology_fit.py --data PTBXL [--cache /tmp/morph.npz] [--write]
        [--labels CRBBB,CLBBB,...]

Targets are the labeller's reading of each ECG's English report (what `regen eval report`
scores). For each label, each feature set (SETS) and each L2 weight in the grid,
leave-one-fold-out over folds 1-8 gives out-of-fold probabilities; the set and L2 with the
lowest pooled log loss are kept, the cut is the one that maximises out-of-fold F1 there, and
the weights are refitted on all of folds 1-8. `--write` saves the labels named by `--labels`
(default: all) to regen/weights/morphology.json; which of them reports use, and how, is chosen
by bench/measured_vs_retrieved.py. Fold 9 is never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("CRBBB", "CLBBB", "LAFB", "IRBBB", "IMI", "ASMI", "QWAVE", "LVH", "VCLVH", "STD_",
          "INVT", "LOWT")
L2 = (0.1, 1.0, 10.0, 100.0)
CONDUCTION_LEADS = ("I", "aVL", "V1", "V2", "V5", "V6")


def sets() -> dict[str, list[str]]:
    from regen.measure import QRS_SHAPE, QRS_SHAPE_LEADS
    from regen.measured import feature_names

    qrs = QRS_SHAPE[:5]
    return {"QRS of I, aVL, V1, V2, V5, V6": feature_names(CONDUCTION_LEADS, qrs),
            "QRS of 12 leads": feature_names(QRS_SHAPE_LEADS, qrs),
            "QRS, ST and T of 12 leads": feature_names(QRS_SHAPE_LEADS)}


def features(data: Path, cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, F), y (N, labels) bool, fold (N,)) for the folds 1-8 ECGs whose QRS and shape
    were measured in every lead (F: the largest set's features); the others are counted and
    dropped."""
    if cache and cache.exists():
        z = np.load(cache)
        return z["x"], z["y"], z["fold"]
    from regen.corpus import load_ptbxl
    from regen.labeller import label_report
    from regen.measure import measure
    from regen.measured import morphology_features
    from regen.reader import read_ecg

    xs, ys, fs, dropped = [], [], [], 0
    for r in load_ptbxl(data, folds="1-8"):
        x = morphology_features(measure(read_ecg(r.path)), list(sets().values())[-1])
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--write", action="store_true",
                    help="save the fitted models to regen/weights/morphology.json")
    ap.add_argument("--labels", default=",".join(LABELS), help="the labels --write saves")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from regen.findings import best_f1_threshold
    from regen.measured import fit_weights, oof_probability
    from regen.metrics import binary_f1, roc_auc

    x, y, fold = features(args.data, args.cache)
    every = list(sets().values())[-1]
    print(f"folds 1-8: {len(x)} ECGs with the QRS duration and shape measured in every lead; "
          "out-of-fold (leave-one-fold-out) against the labeller's reading of each report")
    model = {}
    for j, lab in enumerate(LABELS):
        yj = y[:, j]
        wide = x[:, 0] >= 120
        print(f"{lab:6} {int(yj.sum()):4d} positives; QRS >= 120 ms alone F1 "
              f"{binary_f1(wide, yj):.3f}")
        best = None
        for name, feats in sets().items():
            xs = x[:, [every.index(f) for f in feats]]
            line = f"  {name}:"
            for l2 in L2:
                p = oof_probability(xs, yj, fold, l2)
                ll = float(-np.mean(yj * np.log(np.clip(p, 1e-9, 1))
                                    + (~yj) * np.log(np.clip(1 - p, 1e-9, 1))))
                cut, f1 = best_f1_threshold(p, yj)
                line += f" L2 {l2:g} log loss {ll:.4f} AUC {roc_auc(yj, p):.3f} F1 {f1:.3f};"
                if best is None or ll < best[0]:
                    best = (ll, name, feats, xs, l2, cut, f1)
            print(line)
        assert best is not None
        _, name, feats, xs, l2, cut, f1 = best
        print(f"  chosen: {name}, L2 {l2:g}, cut {cut:.3f} (out-of-fold F1 {f1:.3f})")
        model[lab] = {"features": feats, "weights": list(fit_weights(xs, yj.astype(float), l2)),
                      "cut": round(cut, 4), "l2": l2, "set": name, "oof_f1": round(f1, 4),
                      "positives": int(yj.sum())}
    if args.write:
        from regen.measured import MORPHOLOGY_WEIGHTS

        keep = [lab for lab in args.labels.split(",") if lab]
        doc = {"about": "Logistic models of the median beat's shape (regen.measured."
                        "morphology_findings), fitted on PTB-XL folds 1-8 by python "
                        f"bench/morphology_fit.py --data PTBXL --write --labels {','.join(keep)}",
               "labels": {lab: model[lab] for lab in keep}}
        MORPHOLOGY_WEIGHTS.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {MORPHOLOGY_WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
