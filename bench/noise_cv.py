"""Leave-one-fold-out CV of the signal-quality model on ECG-QA's noise questions about the corpus
folds: for each fold, `fit_quality` on the other folds' PTB-XL annotations and their ECG-QA
items (thresholds, priors), then answer the held-out fold's items with `answer_measured`.
Accuracy per template beside the majority answer of the training folds' items of that
template, in the same run; and the base rate ("yes" share) per template in each fold, from
label counts only, to show how a fold's mix differs.

    python bench/noise_cv.py --data PTBXL --ecgqa ECGQA [--folds 1-8] [--base-rates 9] [--l2 300]

Also the accuracy of each "not sure" band around the thresholds (regen.qa.ABSTAIN_LOGIT): a
"not sure" counts as wrong, as in `regen eval qa`.

No neighbours are given, so a whole-ECG question about a type the model does not measure is
"not sure" here (in `Regen.ask` the neighbours vote on it); it counts as wrong.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

BANDS = (0.0, 0.1, 0.25, 0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ecgqa", type=Path, required=True)
    ap.add_argument("--folds", default="1-8", help="CV folds (each held out in turn)")
    ap.add_argument("--base-rates", default="",
                    help="extra folds whose label counts (only) are shown beside, e.g. 9")
    ap.add_argument("--l2", type=float, default=None,
                    help="the logistic regressions' L2 penalty (default regen.quality.L2)")
    args = ap.parse_args()

    from regen.corpus import load_ptbxl, parse_folds
    from regen.qa import answer_measured, item_question
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.quality import L2, fit_quality
    from regen.reader import read_ecg

    folds = sorted(parse_folds(args.folds) or ())
    recs = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.folds)}
    fold_of = {e: int(r.split or 0) for e, r in recs.items()}
    noise = [it for it in load_ecgqa(args.ecgqa) if it.attribute_type == "noise"]
    items = [it for it in noise if all(e in recs for e in it.ecg_ids)]
    print(f"ECG-QA noise questions about folds {args.folds}: {len(items)}")
    right: dict[str, list[bool]] = defaultdict(list)
    base: dict[str, list[bool]] = defaultdict(list)
    per_fold: list[tuple[int, float, float]] = []
    by_band: dict[float, list[bool]] = defaultdict(list)
    for k in folds:
        train = [it for it in items if fold_of[it.ecg_ids[0]] != k]
        test = [it for it in items if fold_of[it.ecg_ids[0]] == k]
        model = fit_quality(args.data, ",".join(str(f) for f in folds if f != k),
                            ecgqa_items=train, l2=L2 if args.l2 is None else args.l2)
        votes: dict[int, Counter] = defaultdict(Counter)
        for it in train:
            votes[it.template_id][it.answer] += 1
        majority = {t: max(sorted(c), key=lambda a: c[a]) for t, c in votes.items()}
        probs: dict[int, dict] = {}
        ok_fold, base_fold = [], []
        for it in test:
            q = item_question(it)
            assert q is not None and q.measured, it.question
            e = it.ecg_ids[0]
            if e not in probs:
                probs[e] = model.probabilities(read_ecg(recs[e].path))
            ans = answer_measured(q, probs[e], model)
            ok = set(ans.options) == set(it.answer)
            for b in BANDS:
                banded = answer_measured(q, probs[e], model, abstain_logit=b)
                by_band[b].append(set(banded.options) == set(it.answer))
            ok_base = majority.get(it.template_id) == it.answer
            for key in ("all", f"template {it.template_id}"):
                right[key].append(ok)
                base[key].append(ok_base)
            ok_fold.append(ok)
            base_fold.append(ok_base)
        per_fold.append((k, float(np.mean(ok_fold)), float(np.mean(base_fold))))
        print(f"  fold {k}: {len(test)} items, accuracy {per_fold[-1][1]:.3f}, "
              f"majority {per_fold[-1][2]:.3f}", flush=True)
    print(f"\nleave-one-fold-out over folds {args.folds}")
    print(f"{'':14s} {'n':>5s} {'model':>7s} {'majority':>9s}")
    for key in sorted(right, key=lambda s: (s != "all", s)):
        print(f"{key:14s} {len(right[key]):5d} {np.mean(right[key]):7.3f} "
              f"{np.mean(base[key]):9.3f}")
    accs = np.array([a for _, a, _ in per_fold])
    bases = np.array([b for _, _, b in per_fold])
    print(f"mean over folds: model {accs.mean():.3f} ± {accs.std():.3f}, majority "
          f"{bases.mean():.3f}; model - majority {np.mean(accs - bases):+.3f}")
    print("\"not sure\" band (log-odds) around the thresholds: " + ", ".join(
        f"{b}: {np.mean(by_band[b]):.3f}" for b in BANDS))
    _base_rates(noise, args.data, args.folds, args.base_rates)
    return 0


def _base_rates(noise: list, data: Path, folds: str, extra: str) -> None:
    """"yes" share per template and fold: label counts only, nothing is fitted on them."""
    from regen.corpus import load_ptbxl
    from regen.qa_data import record_ecg_id

    spec = ",".join(s for s in (folds, extra) if s)
    fold_of = {record_ecg_id(r): int(r.split or 0) for r in load_ptbxl(data, folds=spec)}
    counts: dict[tuple[int, int], list[bool]] = defaultdict(list)
    for it in noise:
        f = fold_of.get(it.ecg_ids[0])
        if f is not None:
            counts[(it.template_id, f)].append(it.answer == ("yes",))
    shown = sorted({f for _, f in counts})
    print("\n\"yes\" share (n) per template and fold")
    for t in sorted({t for t, _ in counts}):
        cells = [f"{f}: {np.mean(counts[(t, f)]):.2f} ({len(counts[(t, f)])})"
                 for f in shown if counts.get((t, f))]
        print(f"  template {t}: " + ", ".join(cells))


if __name__ == "__main__":
    raise SystemExit(main())
