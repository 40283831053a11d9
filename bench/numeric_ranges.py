"""Normal ranges for ECG-QA's numeric-feature questions (regen.qa_numeric): which reading of the
intervals, and which limits, agree with ECG-QA's answers. Fitted on the items whose ECGs all lie in
the corpus folds, cross-validated there, then reported once on the items that involve a query-fold
ECG, beside the textbook limits and the majority answer.

    python bench/numeric_ranges.py --data PTBXL --ecgqa ECGQA [--corpus-folds 1-8]
        [--query-folds 9] [--alternatives] [--write regen/weights/numeric_ranges.json]

Readings ("sources"): regen's own intervals (`regen.measure`) and neurokit2's wavelet delineation
of lead II at 500 Hz with 0.2.3's choices (`regen.ecgqa_features`). `--alternatives` adds the
readings that were weighed against the shipped neurokit2 one: the installed version's own
choices, other spans for the QRS, QT and PR, the mean over beats instead of the median, lead I,
and lead II at 100 Hz.

CV: for each corpus fold f, the ranges are fitted on the items with no ECG in f and scored on the
items with an ECG in f (exact set match, as ECG-QA scores). The source with the best CV mean is
written. The majority answer is each template's most frequent answer among the same training
items. Answers come from the signal alone, so an item pairing a query ECG with a corpus ECG leaks
nothing into the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

SHIPPED = "neurokit2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ecgqa", type=Path, required=True)
    ap.add_argument("--corpus-folds", default="1-8")
    ap.add_argument("--query-folds", default="9")
    ap.add_argument("--alternatives", action="store_true",
                    help="also score the readings weighed against the shipped neurokit2 one")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the ranges fitted on all corpus-fold items here")
    args = ap.parse_args()

    from regen.corpus import load_ptbxl
    from regen.ecgqa_features import SPANS, beat_points, features_from_points
    from regen.measure import measure
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.qa_numeric import (
        FEATURES,
        TEXTBOOK,
        fit_ranges,
        flags_of,
        item_relation,
        measured_values,
        select,
    )
    from regen.reader import read_ecg

    corpus = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.corpus_folds)}
    query = {record_ecg_id(r): r for r in load_ptbxl(args.data, folds=args.query_folds)}
    records = {**corpus, **query}
    fold = {e: int(str(r.split)) for e, r in records.items()}
    items = [it for it in load_ecgqa(args.ecgqa) if it.attribute_type == "numeric_feature"
             and len(it.ecg_ids) == 2 and all(e in fold for e in it.ecg_ids)
             and item_relation(it.question) is not None]
    train = [it for it in items if all(e in corpus for e in it.ecg_ids)]
    test = [it for it in items if any(e in query for e in it.ecg_ids)]
    print(f"ECG-QA numeric comparison items with signals: {len(train)} on corpus folds "
          f"{args.corpus_folds} only, {len(test)} involving folds {args.query_folds}",
          file=sys.stderr)

    # readings: name -> (lead, fs, spans, aggregate, with 0.2.3's choices) of neurokit2's dwt
    readings: dict[str, tuple[str, int, dict[str, tuple[str, str]], str, bool]] = {
        SHIPPED: ("II", 500, SPANS, "median", True)}
    if args.alternatives:
        readings.update({
            "nk: 0.3's own choices": ("II", 500, SPANS, "median", False),
            "nk: QRS R onset-R offset": ("II", 500, {**SPANS, "qrs duration":
                                                     ("R_Onsets", "R_Offsets")}, "median", True),
            "nk: QT R onset-T offset": ("II", 500, {**SPANS, "qt interval":
                                                    ("R_Onsets", "T_Offsets")}, "median", True),
            "nk: PR P peak-R onset": ("II", 500, {**SPANS, "pr interval":
                                                  ("P_Peaks", "R_Onsets")}, "median", True),
            "nk: mean over beats": ("II", 500, SPANS, "mean", True),
            "nk: lead I": ("I", 500, SPANS, "median", True),
            "nk: lead II at 100 Hz": ("II", 100, SPANS, "median", True)})
    passes = sorted({(lead, fs, old) for lead, fs, _, _, old in readings.values()})

    values: dict[str, dict[int, dict[str, float | None]]] = {"regen": {}}
    values.update({name: {} for name in readings})
    need = sorted({e for it in train + test for e in it.ecg_ids})
    unread: Counter[str] = Counter()
    t0 = time.perf_counter()
    for i, e in enumerate(need):
        ecg = read_ecg(records[e].path)
        values["regen"][e] = measured_values(measure(ecg))[0]
        for lead, fs, as_ecgqa in passes:
            points, note = beat_points(ecg, lead, fs, as_ecgqa)
            if points is None:
                unread[f"lead {lead} {fs} Hz: {note.split(' (')[0][:60]}"] += 1
            for name, (ld, f, spans, agg, old) in readings.items():
                if (ld, f, old) == (lead, fs, as_ecgqa):
                    values[name][e] = (dict.fromkeys(FEATURES) if points is None else
                                       features_from_points(points, fs, spans, agg))
        if (i + 1) % 100 == 0:
            print(f"  read {i + 1}/{len(need)} ECGs", file=sys.stderr)
    print(f"read {len(need)} ECGs in {time.perf_counter() - t0:.0f} s; not delineated: "
          f"{dict(unread) or 'none'}", file=sys.stderr)

    def rows(its, source):
        return [(item_relation(it.question), it.answer, [values[source][e] for e in it.ecg_ids])
                for it in its]

    def answers(its, source, ranges):
        """(the answer set the ranges give, the gold one) per item."""
        return [(set(select(relation, [flags_of(d, ranges) for d in per])) or {"none"},
                 set(gold)) for relation, gold, per in rows(its, source)]

    def accuracy(its, source, ranges):
        right = [got == gold for got, gold in answers(its, source, ranges)]
        return float(np.mean(right)) if right else float("nan")

    def per_feature(its, source, ranges):
        pairs = answers(its, source, ranges)
        return {f: float(np.mean([(f in got) == (f in gold) for got, gold in pairs]))
                for f in FEATURES}

    def majority(fit_on, its):
        best = {}
        for t in {it.template_id for it in fit_on}:
            c = Counter(tuple(sorted(it.answer)) for it in fit_on if it.template_id == t)
            best[t] = c.most_common(1)[0][0]
        return float(np.mean([tuple(sorted(it.answer)) == best.get(it.template_id)
                              for it in its])) if its else float("nan")

    sources = list(values)
    folds = sorted({fold[e] for it in train for e in it.ecg_ids})
    cv: dict[str, list[float]] = {f"{s}, {how}": [] for s in ("regen", SHIPPED)
                                  for how in ("textbook", "fitted")}
    cv.update({f"{s}, fitted": [] for s in sources})
    cv["majority"] = []
    cv_feature: dict[str, list[dict[str, float]]] = {s: [] for s in sources}
    for f in folds:
        fit_on = [it for it in train if all(fold[e] != f for e in it.ecg_ids)]
        held = [it for it in train if any(fold[e] == f for e in it.ecg_ids)]
        for s in sources:
            fitted = fit_ranges(rows(fit_on, s))
            cv[f"{s}, fitted"].append(accuracy(held, s, fitted))
            cv_feature[s].append(per_feature(held, s, fitted))
        for s in ("regen", SHIPPED):
            cv[f"{s}, textbook"].append(accuracy(held, s, TEXTBOOK))
        cv["majority"].append(majority(fit_on, held))
    print(f"\nLeave-one-fold-out CV in folds {args.corpus_folds} ({len(train)} items; exact set "
          "match, mean ± sd over folds):")
    for name, accs in cv.items():
        print(f"  {name:34s} {np.mean(accs):.4f} ± {np.std(accs):.4f}")
    print("  per feature, fitted (is it in the answer set?):")
    for s in sources:
        print(f"    {s:32s} " + ", ".join(
            f"{f} {np.mean([d[f] for d in cv_feature[s]]):.2f}" for f in FEATURES))
    chosen = max(("regen", SHIPPED), key=lambda s: float(np.mean(cv[f"{s}, fitted"])))
    print(f"  chosen source (best CV mean of the two the code reads): {chosen}")

    final = {s: fit_ranges(rows(train, s)) for s in sources}
    print("\nRanges fitted on all corpus-fold items (ms; textbook in brackets):")
    for f in FEATURES:
        print(f"  {f:13s} " + "  ".join(f"{s} {final[s][f]}" for s in ("regen", SHIPPED))
              + f"  [{TEXTBOOK[f]}]")
    print(f"\nReport: {len(test)} items involving folds {args.query_folds} (none took part in a "
          "choice):")
    for s in sources:
        print(f"  {s + ', fitted':34s} {accuracy(test, s, final[s]):.4f}")
    for s in ("regen", SHIPPED):
        print(f"  {s + ', textbook':34s} {accuracy(test, s, TEXTBOOK):.4f}")
    print(f"  {'majority':34s} {majority(train, test):.4f}")
    for s in ("regen", SHIPPED):
        pf = per_feature(test, s, final[s])
        print(f"  per feature, {s}, fitted: " + ", ".join(f"{f} {pf[f]:.2f}" for f in FEATURES))
    for relation in ("persisting", "new", "resolved"):
        sub = [it for it in test if item_relation(it.question) == relation]
        print(f"    {relation:10s} n={len(sub):3d} " + " ".join(
            f"{s} {accuracy(sub, s, final[s]):.4f}" for s in ("regen", SHIPPED))
            + f" majority {majority(train, sub):.4f}")
    if args.write:
        doc = {"ranges": {f: list(final[chosen][f]) for f in FEATURES},
               "source": chosen,
               "textbook": {f: list(TEXTBOOK[f]) for f in FEATURES},
               "fitted_on": f"ECG-QA numeric-feature comparison items (template variant, all "
                            f"splits) whose two ECGs lie in PTB-XL folds {args.corpus_folds}",
               "n_items": len(train),
               "cv_exact_match": {k: round(float(np.mean(v)), 4) for k, v in cv.items()},
               "command": "python bench/numeric_ranges.py --data PTBXL --ecgqa ECGQA --write "
                          "regen/weights/numeric_ranges.json"}
        if chosen == SHIPPED:
            import neurokit2
            doc["neurokit2"] = neurokit2.__version__
        tmp = args.write.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(args.write)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
