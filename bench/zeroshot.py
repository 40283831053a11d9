"""Zero-shot findings from text, and search by meaning, on held-out PTB-XL ECGs.

    python bench/zeroshot.py --data PTBXL --home HOME [--folds 9] [--out zs.png]

HOME indexes folds 1-8 (`regen index rebuild --data PTBXL --folds 1-8 --home HOME`). Prints:

* superclass ROC-AUC per class from text prompts only ("text": the ECG against the prompt
  ensemble; "text+neighbours": also its neighbours' reports matched to the text), beside the
  supervised baselines of the same run: the calibrated neighbour vote on labelled reports
  (kNN) and regen's fused findings model; a constant scorer has AUC 0.5;
* the same for every SCP statement with >= 10 positives among the queries, the statement's
  PTB-XL description as the text;
* text search precision@10 for queries naming one superclass or one common statement, judged
  by the labeller on the returned reports and by the PTB-XL codes of the returned ECGs, beside
  the share of corpus ECGs that have it (what 10 random ECGs would score);
* timings: classify with 20 labels (new labels and cached), search at the corpus's size and at
  100k reports (the corpus's report vectors tiled with noise).

No choice is made here: the templates (`regen.zeroshot.TEMPLATES`) and the superclass prompts
below were written before measuring; the prompts were tried once on fold 9 while exploring and
not changed afterwards. The statement texts are PTB-XL's own descriptions.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUPER_PROMPTS = {
    "NORM": "sinus rhythm. normal ecg|normal ecg|sinus rhythm normal ekg",
    "MI": "inferior myocardial infarction|anteroseptal myocardial infarction|"
          "old infarction q waves|myocardial infarction",
    "STTC": "st-t changes|non-specific st depression|t wave inversion ischaemia|"
            "st segment changes",
    "CD": "left bundle branch block|right bundle branch block|first degree av block|"
          "left anterior fascicular block",
    "HYP": "left ventricular hypertrophy|voltage criteria for left ventricular hypertrophy|"
           "right ventricular hypertrophy",
}
# Text searches: (query, labeller code, PTB-XL codes that count as a hit)
SEARCHES = [
    ("normal ecg", "NORM", {"NORM"}),
    ("myocardial infarction", "MI", {"IMI", "ASMI", "AMI", "ALMI", "LMI", "ILMI", "IPLMI",
                                     "IPMI", "PMI", "INJAS", "INJAL", "INJIN", "INJLA",
                                     "INJIL"}),
    ("inferior myocardial infarction", "IMI", {"IMI", "ILMI", "IPLMI", "IPMI"}),
    ("anteroseptal myocardial infarction", "ASMI", {"ASMI"}),
    ("left ventricular hypertrophy", "LVH", {"LVH", "VCLVH"}),
    ("atrial fibrillation", "AFIB", {"AFIB"}),
    ("complete left bundle branch block", "CLBBB", {"CLBBB"}),
    ("complete right bundle branch block", "CRBBB", {"CRBBB"}),
    ("left anterior fascicular block", "LAFB", {"LAFB"}),
    ("first degree av block", "1AVB", {"1AVB"}),
    ("sinus bradycardia", "SBRAD", {"SBRAD"}),
    ("sinus tachycardia", "STACH", {"STACH"}),
    ("ventricular premature beats", "PVC", {"PVC"}),
    ("incomplete right bundle branch block", "IRBBB", {"IRBBB"}),
    ("non-specific st depression", "STD_", {"STD_", "NDT", "NST_", "DIG", "ISC_"}),
]


def auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="PTB-XL folder")
    ap.add_argument("--home", required=True, help="regen home indexing folds 1-8")
    ap.add_argument("--folds", default="9")
    ap.add_argument("--out", default=None, help="PNG of the per-class AUCs")
    args = ap.parse_args()

    from tqdm import tqdm

    from regen.api import Regen
    from regen.corpus import SUPERCLASSES, load_ptbxl
    from regen.labeller import label_report
    from regen.reader import read_ecg
    from regen.zeroshot import classify_scores, label_vectors, text_projection

    queries = load_ptbxl(args.data, folds=args.folds)
    print(f"queries: {len(queries)} PTB-XL ECGs of fold(s) {args.folds}; corpus: {args.home}")
    with Regen.open(args.home) as rg:
        t0 = time.perf_counter()
        ti = rg.text_index
        dg = rg.diagnoser
        print(f"text index ready in {time.perf_counter() - t0:.1f} s: {len(ti.ids)} reports, "
              f"reference {len(ti.ref_rows)} ECGs, k {ti.k}")
        ecgs = [read_ecg(r.path) for r in tqdm(queries, desc="reading", leave=False)]
        z = rg.embed(ecgs)
        rows, sims = rg._voters(ecgs, z, dg.k, dg.targets)
        vrows = ti.targets.rows_of(dg.targets.ids[np.maximum(rows, 0)])
        vrows[rows < 0] = -1
        proj = text_projection(rg.encoder, z)
        p, pk, _ = dg.probabilities(z, rows, sims)
        col = {c: i for i, c in enumerate(dg.model.findings)}

        def scores(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
            t = label_vectors(labels)
            both, parts = classify_scores(proj, labels, t, ti, (vrows, sims))
            return parts["text"], both

        # -- superclasses ---------------------------------------------------------------
        ysup = np.array([[c in q.superclasses for c in SUPERCLASSES] for q in queries], bool)
        st, sb = scores([SUPER_PROMPTS[c] for c in SUPERCLASSES])
        print(f"\nsuperclass ROC-AUC (fold {args.folds}, n={len(queries)})")
        print(f"{'class':<6} {'pos':>4} {'text':>6} {'text+nb':>8} {'kNN(labels)':>12} "
              f"{'regen fused':>12}")
        rows_out = []
        for j, c in enumerate(SUPERCLASSES):
            y = ysup[:, j]
            r = (auc(y, st[:, j]), auc(y, sb[:, j]), auc(y, pk[:, col[c]]), auc(y, p[:, col[c]]))
            rows_out.append(r)
            print(f"{c:<6} {int(y.sum()):>4} {r[0]:>6.3f} {r[1]:>8.3f} {r[2]:>12.3f} "
                  f"{r[3]:>12.3f}")
        m = np.nanmean(rows_out, 0)
        print(f"{'macro':<6} {'':>4} {m[0]:>6.3f} {m[1]:>8.3f} {m[2]:>12.3f} {m[3]:>12.3f}"
              "   (constant scorer: 0.500)")

        # -- SCP statements ---------------------------------------------------------------
        desc = {}
        with open(Path(args.data) / "scp_statements.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                code = row.get("") or row.get("Unnamed: 0") or next(iter(row.values()))
                desc[code.strip()] = row["description"].strip().lower()
        counts = {c: sum(c in q.scp for q in queries) for c in desc}
        stmts = [c for c, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= 10]
        st2, sb2 = scores([desc[c] for c in stmts])
        print(f"\nSCP statements with >= 10 positives ({len(stmts)}), text = PTB-XL description")
        print(f"{'code':<7} {'pos':>4} {'text':>6} {'text+nb':>8} {'kNN(labels)':>12}  description")
        srows = []
        for j, c in enumerate(stmts):
            y = np.array([c in q.scp for q in queries])
            knn = auc(y, pk[:, col[c]]) if c in col else float("nan")
            r = (auc(y, st2[:, j]), auc(y, sb2[:, j]), knn)
            srows.append(r)
            print(f"{c:<7} {int(y.sum()):>4} {r[0]:>6.3f} {r[1]:>8.3f} {r[2]:>12.3f}  {desc[c]}")
        m2 = np.nanmean(np.array(srows, float), 0)
        print(f"{'macro':<7} {'':>4} {m2[0]:>6.3f} {m2[1]:>8.3f} {m2[2]:>12.3f}  "
              "(kNN: statements the labeller reads only)")

        # -- search -----------------------------------------------------------------------
        _, _, views = rg._corpus_views()
        by_key = {v.key: v for v in views}
        print("\ntext search precision@10 (corpus folds 1-8); judged by the labeller on the "
              "returned reports / by their PTB-XL codes; base: share of corpus ECGs")
        print(f"{'query':<38} {'report:lab':>10} {'report:scp':>10} {'ecg:lab':>8} "
              f"{'ecg:scp':>8} {'base':>6}")
        prec = []
        for text, code, scp in SEARCHES:
            res = []
            for via in ("report", "ecg"):
                hits = rg.search(text, 10, via=via)
                lab = np.mean([code in label_report(h.report) for h in hits])
                sc = np.mean([bool(scp & {c for kind, c, _ in by_key[h.key].labels
                                          if kind == "scp"}) for h in hits])
                res += [lab, sc]
            base = np.mean([bool(scp & {c for kind, c, _ in v.labels if kind == "scp"})
                            for v in views])
            prec.append(res + [base])
            print(f"{text:<38} {res[0]:>10.2f} {res[1]:>10.2f} {res[2]:>8.2f} {res[3]:>8.2f} "
                  f"{base:>6.2f}")
        pm = np.mean(prec, 0)
        print(f"{'mean':<38} {pm[0]:>10.2f} {pm[1]:>10.2f} {pm[2]:>8.2f} {pm[3]:>8.2f} "
              f"{pm[4]:>6.2f}")

        # -- speed ------------------------------------------------------------------------
        labels20 = [desc[c] for c in stmts[:20]]
        labels20 += [f"{x} (variant)" for x in labels20][: 20 - len(labels20)]
        fresh = [f"{lab}, new {i}" for i, lab in enumerate(labels20)]
        e = ecgs[0]
        rg.classify(e, labels20)
        t1 = time.perf_counter()
        rg.classify(e, fresh)
        cold = time.perf_counter() - t1
        warm = []
        for q in ecgs[:30]:
            t1 = time.perf_counter()
            rg.classify(q, labels20)
            warm.append(time.perf_counter() - t1)
        print(f"\nclassify, 20 labels, one 12-lead 10-s ECG: new labels {cold * 1e3:.0f} ms; "
              f"labels seen before p50 {np.median(warm) * 1e3:.1f} ms, "
              f"max {max(warm) * 1e3:.1f} ms")
        t_s = []
        for text, _, _ in SEARCHES:
            rg.search(text, 10)
            t1 = time.perf_counter()
            rg.search(text, 10)
            t_s.append(time.perf_counter() - t1)
        print(f"search at {len(ti.ids)} reports: p50 {np.median(t_s) * 1e3:.1f} ms")
        import faiss

        rng = np.random.default_rng(0)
        n = 100_000
        big = ti.reports[rng.integers(0, len(ti.reports), n)]
        big = big + rng.normal(0, 0.02, big.shape).astype(np.float32)
        big /= np.linalg.norm(big, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(big.shape[1])
        index.add(big)
        tq = label_vectors([s[0] for s in SEARCHES])
        lat = []
        for v in tq:
            t1 = time.perf_counter()
            index.search(v[None], 10)
            lat.append(time.perf_counter() - t1)
        print(f"search at {n} reports (flat inner product, one query): p50 "
              f"{np.median(lat) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms "
              f"(the text's embedding is cached; a new text adds ~{cold / 100 * 5 * 1e3:.0f} ms)")

        if args.out:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 2.4]})
            x = np.arange(len(SUPERCLASSES))
            names = ("text only (zero-shot)", "text + neighbours (zero-shot)",
                     "kNN on labels (supervised)")
            for i, name in enumerate(names):
                ax[0].bar(x + (i - 1) * 0.27, [r[i] for r in rows_out], 0.27, label=name)
            ax[0].set_xticks(x, SUPERCLASSES)
            ax[0].set_ylim(0.5, 1.0)
            ax[0].axhline(0.8, color="k", lw=0.8, ls="--")
            ax[0].set_ylabel("ROC-AUC, fold 9")
            ax[0].set_title("superclasses")
            ax[0].legend(fontsize=7, loc="lower left")
            x2 = np.arange(len(stmts))
            for i, name in enumerate(names):
                ax[1].bar(x2 + (i - 1) * 0.27, [r[i] for r in srows], 0.27, label=name)
            ax[1].set_xticks(x2, stmts, rotation=60, fontsize=8)
            ax[1].set_ylim(0.3, 1.0)
            ax[1].axhline(0.5, color="grey", lw=0.8)
            ax[1].set_title("SCP statements (text: PTB-XL description)")
            fig.tight_layout()
            fig.savefig(args.out, dpi=110)
            print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
