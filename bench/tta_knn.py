"""Test-time averaging of the encoder's embeddings over lead subsets, judged on a fold the
encoder never saw: kNN macro AUC over the PTB-XL superclasses (k=40, softmax weights at 0.1, as
`regen eval classify`) with the plain 12-lead embedding, and with the unit mean of the 12-lead
embedding and those of lead subsets, taken the same way for corpus and queries.

    python bench/tta_knn.py --data PTBXL --encoder ENC_WITHOUT_8 --corpus-folds 1-7 --query-folds 8

Use an encoder trained without the query fold (docs/results/heldout.md): on its own training
folds any gain would be the encoder's memory. Subsets: the limb six and the chest six; four
random eight-lead subsets (seed 0). Lead II queries are scored against each corpus too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, required=True)
    ap.add_argument("--corpus-folds", default="1-7")
    ap.add_argument("--query-folds", default="8")
    ap.add_argument("-k", type=int, default=40)
    args = ap.parse_args()

    from regen.corpus import load_ptbxl
    from regen.dataset import superclass_matrix
    from regen.encoder import Encoder
    from regen.metrics import knn_label_scores, macro_auc
    from regen.prepare import prepare
    from regen.reader import read_ecg

    enc = Encoder.load(args.encoder)
    cfg = enc.cfg
    corpus = load_ptbxl(args.data, folds=args.corpus_folds)
    queries = load_ptbxl(args.data, folds=args.query_folds)
    yc, yq = superclass_matrix(corpus), superclass_matrix(queries)
    ce = [read_ecg(c.path) for c in corpus]
    qe = [read_ecg(q.path) for q in queries]

    def embed(ecgs: list, leads: tuple[str, ...] | None = None) -> np.ndarray:
        return enc.embed([prepare(e.select(list(leads)) if leads else e, fs=cfg.fs,
                                  window_s=cfg.window_s, band=cfg.band) for e in ecgs],
                         batch_size=64)

    def auc(q: np.ndarray, c: np.ndarray) -> float:
        s = q @ c.T
        top = np.argsort(-s, 1)[:, :args.k]
        return macro_auc(yq, knn_label_scores(np.take_along_axis(s, top, 1), yc[top]))[0]

    def unit(z: np.ndarray) -> np.ndarray:
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    rng = np.random.default_rng(0)
    twelve = LIMB + CHEST
    random8 = [tuple(twelve[i] for i in sorted(rng.choice(12, 8, replace=False)))
               for _ in range(4)]
    views: dict[str, list[tuple[str, ...] | None]] = {
        "12 leads": [None], "12 + limb + chest": [None, LIMB, CHEST],
        "12 + 4 random 8-lead": [None, *random8]}
    cache: dict[tuple[str, ...] | None, tuple[np.ndarray, np.ndarray]] = {}
    for subset in {v for vs in views.values() for v in vs}:
        cache[subset] = embed(ce, subset), embed(qe, subset)
    lead_ii = embed(qe, ("II",))
    print(f"encoder {enc.fingerprint}: queries folds {args.query_folds} ({len(qe)}), corpus "
          f"folds {args.corpus_folds} ({len(ce)}), k={args.k}")
    for name, vs in views.items():
        c = unit(np.sum([cache[v][0] for v in vs], axis=0))
        q = unit(np.sum([cache[v][1] for v in vs], axis=0))
        print(f"  {name:<22} 12-lead queries {auc(q, c):.4f}   "
              f"lead II queries {auc(lead_ii, c):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
