"""Retrieval-only report quality on a PTB-XL split, beside baselines measured in the same run.

    python bench/report_quality.py --data PTBXL_DIR [--corpus-folds 1-8] [--query-folds 9] [-k 10]

Systems: regen (encoder + FAISS + consensus refiner, through the public API, index built by the
rebuild job), regen top-1 neighbour, raw-signal nearest neighbour (flattened z-scored 12-lead
signal, cosine) top-1 and + consensus, the most frequent corpus report, a random corpus report.
Metrics: BLEU-1..4 (NLTK sentence BLEU, smoothing 1, averaged), ROUGE-L F1 (beta 1.2), and
superclass macro F1 of the record whose report was used against the query's own superclasses.
Also: index build time, and single-query latency (read + prepare + embed + search + refine).
English references only: queries without an English report are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from regen import SUPERCLASSES, Regen, load_ptbxl, load_settings
from regen.baselines import RawSignalEmbedder, most_frequent, random_reports
from regen.dataset import prepare_records
from regen.encoder import Encoder
from regen.labeller import label_f1
from regen.metrics import text_scores
from regen.rebuild import rebuild
from regen.refine import ConsensusRefiner
from regen.types import Neighbour


def macro_f1(pred: list[tuple[str, ...]], true: list[tuple[str, ...]]) -> float:
    """Superclass macro F1, as `regen eval report` scores it (regen.labeller.label_f1)."""
    return label_f1([frozenset(p) for p in pred], [frozenset(t) for t in true],
                    labels=SUPERCLASSES).macro_f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--corpus-folds", default="1-8")
    ap.add_argument("--query-folds", default="9")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = ap.parse_args()

    corpus = [r for r in load_ptbxl(args.data, folds=args.corpus_folds) if "en" in r.reports]
    queries = [r for r in load_ptbxl(args.data, folds=args.query_folds) if "en" in r.reports]
    refs = [q.reports["en"] for q in queries]
    truth = [q.superclasses for q in queries]
    print(f"corpus {len(corpus)} ECGs (folds {args.corpus_folds}), queries {len(queries)} "
          f"(folds {args.query_folds}), k={args.k}", file=sys.stderr)
    rows: dict[str, dict] = {}

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home, k=args.k)
        t0 = time.perf_counter()
        build = rebuild(settings, corpus, data_source=str(args.data), progress=False)
        build_s = time.perf_counter() - t0
        with Regen.open(home, k=args.k) as rg:
            by_key = {r.key: r for r in corpus}
            lat = []
            for q in queries[:50]:        # single-query latency, one at a time
                t1 = time.perf_counter()
                rg.report(q.path, log=False)
                lat.append(time.perf_counter() - t1)
            reports = list(rg.reports([q.path for q in queries], log=False))
            t_search = []
            z = rg.embed([__import__("regen").read_ecg(q.path) for q in queries[:50]])
            for v in z:
                t2 = time.perf_counter()
                rg.index.search(v[None], args.k)
                t_search.append(time.perf_counter() - t2)
        rows["regen consensus"] = {
            **text_scores([r.text for r in reports], refs),
            "label_f1": macro_f1([by_key[r.cited[0]].superclasses if r.cited else ()
                                  for r in reports], truth),
            "abstained": sum(r.abstained for r in reports)}
        top1 = [r.neighbours[0] for r in reports]
        rows["regen top-1"] = {**text_scores([n.report for n in top1], refs),
                               "label_f1": macro_f1([n.superclasses for n in top1], truth)}

    # Raw-signal nearest neighbour, measured on the same records.
    enc = Encoder.load(settings.encoder)
    cp, ck, _ = prepare_records(corpus, enc.cfg, progress=False)
    qp, _, _ = prepare_records(queries, enc.cfg, progress=False)
    raw = RawSignalEmbedder()
    zc, zq = raw.embed(cp), raw.embed(qp)
    sims = zq @ zc.T
    top = np.argsort(-sims, axis=1)[:, : args.k]
    raw1 = [ck[t[0]] for t in top]
    rows["raw-signal top-1"] = {**text_scores([r.reports["en"] for r in raw1], refs),
                                "label_f1": macro_f1([r.superclasses for r in raw1], truth)}
    ref = ConsensusRefiner(min_confidence=0.0)
    raw_cons, raw_lab = [], []
    for qi, t in enumerate(top):
        nb = [Neighbour(i, ck[i].key, float(sims[qi, i]), ck[i].reports["en"]) for i in t]
        d = ref.refine(nb)
        raw_cons.append(d.text)
        raw_lab.append(ck[[n.key for n in nb].index(d.cited[0])].superclasses)
    rows["raw-signal consensus"] = {**text_scores(raw_cons, refs),
                                    "label_f1": macro_f1(raw_lab, truth)}
    mf = most_frequent([r.reports["en"] for r in corpus])
    mf_rec = next(r for r in corpus if " ".join(r.reports["en"].lower().split()) == mf)
    rows["most-frequent report"] = {**text_scores([mf] * len(refs), refs),
                                    "label_f1": macro_f1([mf_rec.superclasses] * len(refs),
                                                         truth)}
    rnd = random_reports([r.reports["en"] for r in corpus], len(refs))
    rows["random report"] = {**text_scores(rnd, refs), "label_f1": float("nan")}

    cols = ["bleu1", "bleu4", "rouge_l", "label_f1"]
    print(f"\n{'system':<24}" + "".join(f"{c:>10}" for c in cols))
    for name, r in rows.items():
        print(f"{name:<24}" + "".join(f"{r[c]:>10.4f}" for c in cols))
    lat_ms = np.array(lat) * 1e3
    print(f"\nindex build ({build.count} ECGs, read+embed+index+db): {build_s:.2f} s "
          f"{build.timings}")
    print(f"single-query report latency over {len(lat)} queries: p50 {np.median(lat_ms):.1f} ms, "
          f"p99 {np.percentile(lat_ms, 99):.1f} ms; FAISS search alone p50 "
          f"{np.median(t_search) * 1e3:.3f} ms")
    if reports:
        print(f"regen consensus abstained on {rows['regen consensus']['abstained']} of "
              f"{len(reports)} queries")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "build_s": build_s,
                                         "latency_ms_p50": float(np.median(lat_ms)),
                                         "latency_ms_p99": float(np.percentile(lat_ms, 99))},
                                        indent=2))


if __name__ == "__main__":
    main()
