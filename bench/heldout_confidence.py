"""Is a report's confidence honest on ECGs the encoder never saw? Mean confidence against the
mean per-report label F1 (the quantity it estimates), overall and in confidence bins, for the
reports of a held-out fold from a home whose encoder and models never saw it.

    python bench/heldout_confidence.py HOME ENCODER FOLD PTBXL
    # e.g. the home bench/heldout_calibration.py built on folds 1-7 with the encoder trained
    # without fold 8: python bench/heldout_confidence.py HOME7 ENC7 8 PTBXL

Nothing is fitted here.
"""

import sys

import numpy as np

from regen.api import Regen
from regen.corpus import load_ptbxl
from regen.eval_findings import per_report_f1
from regen.labeller import LABELS, label_report
from regen.reader import read_ecg

home, enc, fold, data = sys.argv[1:5]
rg = Regen.open(home, encoder=enc)
qs = [r for r in load_ptbxl(data, folds=fold) if r.reports.get("en")]
reps = list(rg.reports([read_ecg(q.path) for q in qs], log=False))
conf = np.array([r.confidence for r in reps])
f1 = np.array([per_report_f1(
    frozenset(f.label for f in r.findings if f.present and f.label in LABELS),
    frozenset(label_report(q.reports["en"]))) for r, q in zip(reps, qs)])
print(f"fold {fold}: {len(qs)} reports; mean confidence {conf.mean():.4f}, mean per-report label "
      f"F1 {f1.mean():.4f}; correlation {np.corrcoef(conf, f1)[0, 1]:.3f}; abstained "
      f"{np.mean([r.abstained for r in reps]):.3f}")
for lo, hi in ((0, .6), (.6, .7), (.7, .8), (.8, 1.01)):
    m = (conf >= lo) & (conf < hi)
    if m.any():
        print(f"  confidence {lo}-{min(hi, 1)}: n {m.sum()}, mean confidence {conf[m].mean():.3f}, "
              f"mean F1 {f1[m].mean():.3f}")
