"""Normal ranges for ECG-QA's numeric-feature questions (regen.qa_numeric): fitted on the items
whose ECGs all lie in the corpus folds, cross-validated there, then reported once on the items
that involve a query-fold ECG, beside the textbook ranges and the majority answer.

    python bench/numeric_ranges.py --data PTBXL --ecgqa ECGQA [--corpus-folds 1-8]
        [--query-folds 9] [--write regen/weights/numeric_ranges.json]

CV: for each corpus fold f, the ranges are fitted on the items with no ECG in f and scored on
the items with an ECG in f (exact set match, as ECG-QA scores). The majority answer is each
template's most frequent answer among the same training items. Answers come from measurements
alone, so an item pairing a query ECG with a corpus ECG leaks nothing into the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ecgqa", type=Path, required=True)
    ap.add_argument("--corpus-folds", default="1-8")
    ap.add_argument("--query-folds", default="9")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the ranges fitted on all corpus-fold items here")
    args = ap.parse_args()

    from regen.corpus import load_ptbxl
    from regen.measure import measure
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.qa_numeric import FEATURES, TEXTBOOK, fit_ranges, flags_of, item_relation, select
    from regen.reader import read_ecg

    corpus = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.corpus_folds)}
    query = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.query_folds)}
    fold = {e: int(str(r.split)) for e, r in {**corpus, **query}.items()}
    items = [it for it in load_ecgqa(args.ecgqa) if it.attribute_type == "numeric_feature"
             and len(it.ecg_ids) == 2 and all(e in fold for e in it.ecg_ids)
             and item_relation(it.question) is not None]
    train = [it for it in items if all(e in corpus for e in it.ecg_ids)]
    test = [it for it in items if any(e in query for e in it.ecg_ids)]
    print(f"ECG-QA numeric comparison items with signals: {len(train)} on corpus folds "
          f"{args.corpus_folds} only, {len(test)} involving folds {args.query_folds}",
          file=sys.stderr)

    values: dict[int, dict[str, float | None]] = {}
    t0 = time.perf_counter()
    need = sorted({e for it in train + test for e in it.ecg_ids})
    for i, e in enumerate(need):
        m = measure(read_ecg({**corpus, **query}[e].path))
        values[e] = {f: getattr(m, field) for f, field in FEATURES.items()}
        if (i + 1) % 200 == 0:
            print(f"  measured {i + 1}/{len(need)} ECGs", file=sys.stderr)
    print(f"measured {len(need)} ECGs in {time.perf_counter() - t0:.0f} s; share measurable: "
          + ", ".join(f"{f} {np.mean([values[e][f] is not None for e in need]):.2f}"
                      for f in FEATURES), file=sys.stderr)

    def rows(its):
        return [(item_relation(it.question), it.answer, [values[e] for e in it.ecg_ids])
                for it in its]

    def answers(its, ranges):
        """(the answer set the ranges give, the gold one) per item."""
        return [(set(select(relation, [flags_of(d, ranges) for d in per])) or {"none"},
                 set(gold)) for relation, gold, per in rows(its)]

    def accuracy(its, ranges):
        right = [got == gold for got, gold in answers(its, ranges)]
        return float(np.mean(right)) if right else float("nan")

    def majority(fit_on, its):
        best = {}
        for t in {it.template_id for it in fit_on}:
            c = Counter(tuple(sorted(it.answer)) for it in fit_on if it.template_id == t)
            best[t] = c.most_common(1)[0][0]
        return float(np.mean([tuple(sorted(it.answer)) == best.get(it.template_id)
                              for it in its])) if its else float("nan")

    folds = sorted({fold[e] for it in train for e in it.ecg_ids})
    cv = {"textbook": [], "fitted": [], "majority": []}
    for f in folds:
        fit_on = [it for it in train if all(fold[e] != f for e in it.ecg_ids)]
        held = [it for it in train if any(fold[e] == f for e in it.ecg_ids)]
        fitted = fit_ranges(rows(fit_on))
        cv["textbook"].append(accuracy(held, TEXTBOOK))
        cv["fitted"].append(accuracy(held, fitted))
        cv["majority"].append(majority(fit_on, held))
    print(f"\nLeave-one-fold-out CV in folds {args.corpus_folds} ({len(train)} items; exact set "
          "match, mean ± sd over folds):")
    for name, accs in cv.items():
        print(f"  {name:9s} {np.mean(accs):.4f} ± {np.std(accs):.4f}")

    final = fit_ranges(rows(train))
    print("\nRanges fitted on all corpus-fold items (ms; textbook in brackets):")
    for f in FEATURES:
        print(f"  {f:13s} {final[f]}  [{TEXTBOOK[f]}]")
    print(f"\nReport: {len(test)} items involving folds {args.query_folds} (none took part in a "
          "choice):")
    print(f"  fitted    {accuracy(test, final):.4f}")
    print(f"  textbook  {accuracy(test, TEXTBOOK):.4f}")
    print(f"  majority  {majority(train, test):.4f}")
    def per_feature(its, ranges):
        pairs = answers(its, ranges)
        return {f: float(np.mean([(f in got) == (f in gold) for got, gold in pairs]))
                for f in FEATURES}

    pf_fit, pf_txt = per_feature(test, final), per_feature(test, TEXTBOOK)
    print("  per feature (is it in the answer set?), fitted / textbook: " + ", ".join(
        f"{f} {pf_fit[f]:.2f}/{pf_txt[f]:.2f}" for f in FEATURES))
    for relation in ("persisting", "new", "resolved"):
        sub = [it for it in test if item_relation(it.question) == relation]
        print(f"    {relation:10s} n={len(sub):3d} fitted {accuracy(sub, final):.4f} "
              f"textbook {accuracy(sub, TEXTBOOK):.4f} majority {majority(train, sub):.4f}")
    if args.write:
        doc = {"ranges": {f: list(final[f]) for f in FEATURES},
               "textbook": {f: list(TEXTBOOK[f]) for f in FEATURES},
               "fitted_on": f"ECG-QA numeric-feature comparison items (template variant, all "
                            f"splits) whose two ECGs lie in PTB-XL folds {args.corpus_folds}",
               "n_items": len(train),
               "cv_exact_match": {k: round(float(np.mean(v)), 4) for k, v in cv.items()},
               "command": "python bench/numeric_ranges.py --data PTBXL --ecgqa ECGQA --write "
                          "regen/weights/numeric_ranges.json"}
        tmp = args.write.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(args.write)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
