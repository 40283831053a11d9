"""The "not sure" band of noise answers (regen.qa.ABSTAIN_LOGIT), chosen on ECG-QA's noise
questions about the corpus folds only: accuracy per band width.

    python bench/noise_band.py --data PTBXL --ecgqa ECGQA [--folds 1-8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ecgqa", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    args = ap.parse_args()

    from regen.corpus import load_ptbxl
    from regen.qa import answer_measured, item_question
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.quality import QualityModel
    from regen.reader import read_ecg

    recs = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.folds)}
    items = [it for it in load_ecgqa(args.ecgqa)
             if it.attribute_type == "noise" and all(e in recs for e in it.ecg_ids)]
    model = QualityModel.load()
    probs: dict[int, dict] = {}
    bands = (0.0, 0.1, 0.25, 0.5)
    right: dict[float, list[bool]] = {b: [] for b in bands}
    for it in items:
        q = item_question(it)
        if q is None or not q.measured:
            continue
        e = it.ecg_ids[0]
        if e not in probs:
            probs[e] = model.probabilities(read_ecg(recs[e].path))
        for b in bands:
            ans = answer_measured(q, probs[e], model, [], abstain_logit=b)
            right[b].append(set(ans.options) == set(it.answer))
    print(f"ECG-QA noise questions about folds {args.folds}: {len(right[0.0])} items")
    for b in bands:
        print(f"  band {b:<5} accuracy {np.mean(right[b]):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
