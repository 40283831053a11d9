"""Fit the measured atrial-fibrillation score (`regen.measured.AF_WEIGHTS`) on PTB-XL folds
1-8 and print its leave-one-fold-out CV beside the RR-irregularity cut it joins.

    python bench/af_fit.py --data /work/shared/data/ptbxl [--cache /tmp/af/feat.npz]

Each ECG gives two rows, its 12-lead and its lead-II measurements (`regen.measure`), so one
model serves both; AFIB from scp_codes. CV: for each of folds 1-8, fit on the other seven and
score the held-out fold (both lead sets), for each feature set and L2 weight in the grid; the
rule picks the set and weight with the lowest pooled CV log loss, then fits them on all of
folds 1-8 (the weights to copy into AF_WEIGHTS). Fold 9 is never read.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable
from pathlib import Path

import numpy as np

from regen.measure import Measurements, measure
from regen.measured import AF_FEATURES, af_features, fit_weights, irregularity, oof_probability
from regen.metrics import log_loss
from regen.reader import read_ecg

SETS = {"RR (irregularity, nRMSSD, pNN50, turning points)": (0, 1, 2, 3),
        "irregularity + no P wave": (0, 4),
        "RR + no P wave": (0, 1, 2, 3, 4),
        "RR + P consistency": (0, 1, 2, 3, 5),
        "all six": (0, 1, 2, 3, 4, 5)}
L2 = (0.01, 0.1, 1.0, 10.0)


def corpus_rows(data: Path, featurize: Callable[[Measurements], np.ndarray | None], code: str,
                cache: Path | None = None) -> tuple[np.ndarray, ...]:
    """(x (R, F), y (R,) whether scp_codes hold `code`, fold (R,), lead set (R,) 0 = 12-lead /
    1 = lead II, irregularity (R,)): each folds 1-8 ECG with a signal measured twice, 12-lead
    and lead II alone, a row where `featurize` gives features. Saved to / read from `cache`."""
    if cache and cache.exists():
        z = np.load(cache)
        return z["x"], z["y"], z["fold"], z["lead"], z["irr"]
    import pandas as pd

    db = pd.read_csv(data / "ptbxl_database.csv", index_col="ecg_id")
    rows: list[tuple[np.ndarray, bool, int, int, float]] = []
    for _, r in db[db.strat_fold <= 8].iterrows():
        if not (data / (r.filename_lr + ".hea")).exists():
            continue
        e = read_ecg(data / r.filename_lr)
        has = code in ast.literal_eval(r.scp_codes)
        for lead, ecg in ((0, e), (1, e.select(["II"]))):
            m = measure(ecg)
            x = featurize(m)
            if x is not None:
                rows.append((x, has, int(r.strat_fold), lead, irregularity(m)))
    xs, ys, fs, ls, irr = zip(*rows)
    out = (np.array(xs), np.array(ys, np.float64), np.array(fs), np.array(ls), np.array(irr))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=out[0], y=out[1], fold=out[2], lead=out[3], irr=out[4])
    return out


def auc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum())
                 / (len(pos) * len(neg)))


def f1_at(s: np.ndarray, y: np.ndarray, cut: float) -> float:
    pred = s >= cut
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / (pred.sum() + y.sum()) if tp else 0.0


def cv(x: np.ndarray, y: np.ndarray, fold: np.ndarray, cols: tuple[int, ...], l2: float
       ) -> np.ndarray:
    """Out-of-fold probabilities, leave-one-fold-out over folds 1-8."""
    return oof_probability(x[:, list(cols)], y, fold, l2)


def weights_on(x: np.ndarray, y: np.ndarray, cols: tuple[int, ...], l2: float
               ) -> tuple[float, ...]:
    """`fit_weights` on the columns `cols` of x, as one weight per column of x (0 for those
    left out), then the intercept."""
    w = fit_weights(x[:, list(cols)], y, l2)
    full = [0.0] * x.shape[1]
    for c, v in zip(cols, w[:-1]):
        full[c] = v
    return (*full, w[-1])


def choose(x: np.ndarray, y: np.ndarray, fold: np.ndarray, lead: np.ndarray,
           sets: dict[str, tuple[int, ...]], l2s: tuple[float, ...],
           cuts: tuple[float, ...] = (0.5,)) -> tuple[str, tuple[int, ...], float]:
    """Each feature set and L2 by leave-one-fold-out CV (printed: pooled log loss, and per lead
    set AUC and F1 at `cuts`): the (name, columns, L2) with the lowest log loss."""
    best = None
    for name, cols in sets.items():
        for l2 in l2s:
            p = cv(x, y, fold, cols, l2)
            ll = log_loss(p, y)
            per = "; ".join(
                f"{n} AUC {auc(p[s], y[s]):.3f} F1@{'/'.join(f'{c:g}' for c in cuts)} "
                + "/".join(f"{f1_at(p[s], y[s], c):.3f}" for c in cuts)
                for n, s in (("12-lead", lead == 0), ("lead II", lead == 1)))
            print(f"  CV {name}, L2 {l2:g}: log loss {ll:.4f}; {per}")
            if best is None or ll < best[0]:
                best = (ll, name, cols, l2)
    assert best is not None
    return best[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, help="features saved here / read from here")
    args = ap.parse_args()
    x, y, fold, lead, irr = corpus_rows(args.data, af_features, "AFIB", args.cache)
    print(f"folds 1-8: {len(y)} rows ({int((lead == 0).sum())} 12-lead, "
          f"{int((lead == 1).sum())} lead II), AFIB {int(y.sum())}")
    for name, sel in (("12-lead", lead == 0), ("lead II", lead == 1)):
        print(f"  baseline irregularity: {name} AUC {auc(irr[sel], y[sel]):.3f}, "
              f"F1 at >= 0.05 {f1_at(irr[sel], y[sel], 0.05):.3f}, "
              f"at >= 0.10 {f1_at(irr[sel], y[sel], 0.10):.3f}")
    unlogged = np.column_stack([np.exp(x[:, :2]) - 0.01, x[:, 2:]])
    p = cv(unlogged, y, fold, SETS["RR + no P wave"], 1.0)
    print("  CV RR + no P wave with the two ratios not logged, L2 1: log loss "
          f"{log_loss(p, y):.4f}")
    name, cols, l2 = choose(x, y, fold, lead, SETS, L2)
    print(f"chosen (lowest CV log loss): {name}, L2 {l2:g}")
    print(f"AF_WEIGHTS = {weights_on(x, y, cols, l2)}  # {AF_FEATURES} + intercept, folds 1-8")
    # the same choice fitted without each fold: what a scan of that fold's spliced records
    # uses when choosing the blend (bench/scan_bench.py --tune-af --fold F --af-weights ...)
    for f in range(1, 9):
        tr = fold != f
        print(f"  without fold {f}: --af-weights "
              + ",".join(f"{v:g}" for v in weights_on(x[tr], y[tr], cols, l2)))


if __name__ == "__main__":
    main()
