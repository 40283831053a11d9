"""Which findings the signal's measurements should decide, chosen on the corpus folds only.

For every corpus ECG (PTB-XL folds 1-8 by default): its out-of-fold retrieved decision (the
findings model's leave-one-fold-out CV, `regen.findings.fit`) and its measured decision
(`regen.measure` + `regen.measured`), each scored by F1 against the labeller's reading of its
own report. Prints, per label: retrieved; measured where measurable, else retrieved; measured
only; retrieved unless the measured probability is below 0.01 / 0.05 / 0.2 (a veto). Then AFIB:
retrieved, and retrieved blended with the measured AF score (`regen.measured.af_probability`; the
score's weights refitted without each ECG's fold, so it is out of fold too) at blends 0.25 /
0.5 / 0.75 / 1; regen/diagnose.py's AF_BLEND_REPORT comes from that row.
regen/diagnose.py's MEASURED_DECIDES, MEASURED_ONLY, MEASURED_VETO, VETO_BELOW, SINUS_GATE and
MEASURED_MIX come from this table.

    python bench/measured_vs_retrieved.py --data PTBXL [--folds 1-8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

LABELS = ("STACH", "SBRAD", "1AVB", "LPR", "PVC", "PAC", "LAD", "RAD")


def f1(pred: np.ndarray, true: np.ndarray) -> float:
    from regen.metrics import binary_f1

    return binary_f1(pred, true)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    args = ap.parse_args()

    import db as store
    from regen import Regen, load_settings
    from regen.corpus import load_ptbxl
    from regen.findings import fit, view_labels
    from regen.measure import measure
    from regen.measured import measured_findings
    from regen.reader import read_ecg
    from regen.rebuild import rebuild

    home = Path(tempfile.mkdtemp(prefix="regen-mvr-"))
    rebuild(load_settings(home), load_ptbxl(args.data, folds=args.folds), progress=False,
            data_source=f"{args.data}:{args.folds}")
    with Regen.open(home) as rg:
        ids, vecs = rg.index.vectors()
        with rg.db.session() as s:
            rows = store.fetch_records(s, ids.tolist())
    views = [rows[int(i)] for i in ids]
    targets = view_labels(ids, views, "en")
    oof: dict = {}
    model = fit(targets, vecs, oof=oof)
    measured, ms = [], []
    for v in views:
        try:
            m = measure(read_ecg(v.path))
            measured.append({f.label: f for f in measured_findings(m)})
            ms.append(m)
        except Exception as exc:  # noqa: BLE001 - a record the measurement cannot read
            print(f"{v.key}: not measured ({exc})", file=sys.stderr)
            measured.append({})
            ms.append(None)
    print(f"{len(views)} corpus ECGs (folds {args.folds}); out-of-fold F1 against the "
          "labeller's reading of each report")
    print(f"{'label':6} {'pos':>5} {'retrieved':>10} {'measured|retr.':>15} {'measured only':>14}"
          f" {'measurable':>11}  retrieved, vetoed below 0.01 / 0.05 / 0.2")
    for lab in LABELS:
        known, true, ret, has, mpres = decisions(lab, model, oof, targets, measured)
        both = np.where(has, mpres, ret)
        mp = np.array([m[lab].probability if lab in m else np.nan for m in measured])
        vetoes = " / ".join(f"{f1(ret & ~(mp < v) & known, true):.3f}" for v in (0.01, 0.05, 0.2))
        print(f"{lab:6} {true.sum():5d} {f1(ret & known, true):10.3f} "
              f"{f1(both & known, true):15.3f} {f1(mpres & known, true):14.3f} "
              f"{has[known].mean():11.2f}  {vetoes}")
    sinus_gate_rows(model, oof, targets, measured)
    pvc_rows(model, oof, targets, measured)
    pr_wording_rows(model, oof, targets, measured)
    afib_rows(model, oof, targets, views, ms)
    morphology_rows(model, oof, targets, views, ms)
    sarrh_rows(model, oof, targets, views, ms)
    unnamed_rhythm_rows(model, oof, targets, measured, ms)
    return 0


def unnamed_rhythm_rows(model, oof, targets, measured, ms) -> None:
    """ECGs whose out-of-fold retrieved decisions name no rhythm (none of regen.diagnose's
    RHYTHMS over its threshold after `resolve`): left so, against a sinus rhythm named where the
    median beat has a P wave with a sinus axis (STACH / SBRAD where the measured rate says so,
    else SR). F1 of SR, STACH and SBRAD and their sum, over all corpus ECGs; regen/diagnose.py's
    SINUS_FALLBACK comes from this row."""
    from regen.diagnose import RHYTHMS, resolve
    from regen.findings import FINDINGS
    from regen.measured import not_sinus

    col = {c: FINDINGS.index(c) for c in ("SR", "STACH", "SBRAD")}
    decided = np.array([resolve(p, model.threshold, np.ones(len(FINDINGS), bool))[0]
                        for p in oof["p"]])
    unnamed = ~decided[:, [FINDINGS.index(c) for c in RHYTHMS]].any(axis=1)
    sinus_p = np.array([m is not None and m.quality.get("pr_ms") == "ok" and not not_sinus(m)
                        for m in ms])
    rate = {c: np.array([c in mf and mf[c].present for mf in measured]) for c in col}
    fill = unnamed & sinus_p
    named = {"STACH": fill & rate["STACH"], "SBRAD": fill & rate["SBRAD"]}
    named["SR"] = fill & ~named["STACH"] & ~named["SBRAD"]

    def scores(extra: dict[str, np.ndarray]) -> str:
        out, total = [], 0.0
        for c, i in col.items():
            known = targets.known[:, i]
            v = f1((decided[:, i] | extra.get(c, False)) & known, targets.y[:, i] & known)
            out.append(f"{c} {v:.3f}")
            total += v
        return ", ".join(out) + f", sum {total:.3f}"

    print(f"no rhythm named: {int(unnamed.sum())} ECGs, {int(fill.sum())} with a sinus P wave;"
          f" left unnamed: {scores({})}; sinus rhythm named: {scores(named)}")


SARRH_CUTS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def sarrh_rows(model, oof, targets, views, ms) -> None:
    """Sinus rhythm or sinus arrhythmia: the out-of-fold retrieved rhythm (one per ECG, as
    `regen.diagnose.resolve` picks it), against the measured sinus-arrhythmia score
    (`regen.measured.sarrh_features`, the shipped feature set and L2 refitted without each ECG's
    fold on the labeller's SARRH, so it is out of fold too) choosing between the two where the
    retrieved rhythm is SR or SARRH ("decides") or only turning SR into SARRH ("upgrades"), at
    each cut; F1 of SARRH, of SR and their sum. regen/diagnose.py's SARRH_DECIDES and
    regen/measured.py's SARRH_CUT come from these rows."""
    from regen.diagnose import resolve
    from regen.findings import FINDINGS
    from regen.measured import SARRH_L2, SARRH_WEIGHTS, oof_probability, sarrh_features

    cols = [i for i, w in enumerate(SARRH_WEIGHTS[:-1]) if w != 0.0]
    s, r = FINDINGS.index("SARRH"), FINDINGS.index("SR")
    rhythm = np.array([resolve(p, model.threshold, np.ones(len(FINDINGS), bool))[0]
                       for p in oof["p"]])
    x = [None if m is None else sarrh_features(m) for m in ms]
    has = np.array([v is not None for v in x])
    folds = np.array([str(v.split) for v in views])[has]
    y = targets.y[:, s] & targets.known[:, s]
    pm = np.full(len(views), np.nan)
    pm[has] = oof_probability(np.array([v for v in x if v is not None])[:, cols], y[has],
                              folds, SARRH_L2)

    def scores(sarrh: np.ndarray, sr: np.ndarray) -> str:
        fs = f1(sarrh & targets.known[:, s], y)
        fr = f1(sr & targets.known[:, r], targets.y[:, r] & targets.known[:, r])
        return f"SARRH {fs:.3f} SR {fr:.3f} sum {fs + fr:.3f}"

    sinus = rhythm[:, s] | rhythm[:, r]
    print(f"SARRH {int(y.sum())} positives, {int(has.sum())} scored; retrieved: "
          + scores(rhythm[:, s], rhythm[:, r]))
    for how, where in (("decides", sinus), ("upgrades", rhythm[:, r])):
        line = f"SARRH measured {how}:"
        for cut in SARRH_CUTS:
            on = has & where & (np.nan_to_num(pm) >= cut)
            off = has & where & ~on
            line += (f" cut {cut} " + scores((rhythm[:, s] & ~off) | on,
                                               (rhythm[:, r] & ~on) | (off & sinus)) + ";")
        print(line)


def morphology_rows(model, oof, targets, views, ms) -> None:
    """Each label of the morphology model (`regen.measured.morphology_findings`: CRBBB, CLBBB,
    LAFB, ...): out-of-fold retrieved decisions against the measured model (refitted without
    each ECG's fold on the shipped features, L2 and cut, so it is out of fold too) alone, and
    the two averaged on the decision
    scale (retrieved p over its threshold, measured p over its cut; stated at >= 1) with the
    measured one weighing b, as MEASURED_MIX does; where the QRS shape is not measured the
    retrieved decision stands."""
    from regen.findings import FINDINGS
    from regen.measured import morphology_features, morphology_model, oof_probability

    for lab, spec in morphology_model().items():
        x = [None if m is None else morphology_features(m, spec["features"]) for m in ms]
        has = np.array([v is not None for v in x])
        xs = np.array([v for v in x if v is not None])
        folds = np.array([str(v.split) for v in views])[has]
        c = FINDINGS.index(lab)
        known = targets.known[:, c]
        true = targets.y[:, c] & known
        pm = np.full(len(views), np.nan)
        pm[has] = oof_probability(xs, true[has], folds, spec["l2"])
        r = oof["p"][:, c] / model.threshold[c]
        m = pm / spec["cut"]
        line = (f"{lab} {int(true.sum())} positives: retrieved {f1((r >= 1) & known, true):.3f}"
                f"; measured only {f1(has & (m >= 1) & known, true):.3f}")
        for b in (0.25, 0.5, 0.75, 1.0):
            q = np.where(has, (1 - b) * r + b * np.nan_to_num(m), r)
            line += f"; blend {b} {f1((q >= 1) & known, true):.3f}"
        print(line)


SINUS_GATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)


def pr_wording_rows(model, oof, targets, measured) -> None:
    """A long PR is "first-degree AV block" (1AVB) or "prolonged PR interval" (LPR): the same
    finding, worded either way in PTB-XL. Stating both (MEASURED_ONLY as it is) against one
    wording chosen by the neighbours (the larger retrieved p over threshold), each where the
    measured PR is long; F1 of each label and their sum."""
    from regen.findings import FINDINGS

    a, b = FINDINGS.index("1AVB"), FINDINGS.index("LPR")
    ra = oof["p"][:, a] / model.threshold[a]
    rb = oof["p"][:, b] / model.threshold[b]
    long_a = np.array([m["1AVB"].present if "1AVB" in m else False for m in measured])
    long_b = np.array([m["LPR"].present if "LPR" in m else False for m in measured])
    long_pr = long_a | long_b
    rows = {"both": (long_a, long_b),
            "by neighbours": (long_pr & (ra > rb), long_pr & (ra <= rb)),
            "LPR only": (np.zeros_like(long_pr), long_pr),
            "1AVB only": (long_pr, np.zeros_like(long_pr))}
    line = "long PR worded:"
    for name, (pa, pb) in rows.items():
        fa = f1(pa & targets.known[:, a], targets.y[:, a] & targets.known[:, a])
        fb = f1(pb & targets.known[:, b], targets.y[:, b] & targets.known[:, b])
        line += f" {name} 1AVB {fa:.3f} LPR {fb:.3f} sum {fa + fb:.3f};"
    print(line)


def pvc_rows(model, oof, targets, measured) -> None:
    """PVC: the retrieved and measured decisions combined on the decision scale (retrieved
    p / threshold, measured probability / 0.5; present at >= 1): the measured one weighs b."""
    from regen.findings import FINDINGS

    c = FINDINGS.index("PVC")
    known = targets.known[:, c]
    true = targets.y[:, c] & known
    r = oof["p"][:, c] / model.threshold[c]
    has = np.array(["PVC" in m for m in measured])
    m = np.array([m["PVC"].probability / 0.5 if "PVC" in m else np.nan for m in measured])
    line = (f"PVC {true.sum()} positives: retrieved {f1((r >= 1) & known, true):.3f}; either "
            f"{f1(((r >= 1) | (has & (m >= 1))) & known, true):.3f}; both "
            f"{f1((r >= 1) & (~has | (m >= 1)) & known, true):.3f}")
    for b in (0.25, 0.5, 0.75):
        q = np.where(has, (1 - b) * r + b * m, r)
        line += f"; blend {b} {f1((q >= 1) & known, true):.3f}"
    print(line)


def decisions(lab, model, oof, targets, measured) -> tuple[np.ndarray, ...]:
    """One label's (known, true, retrieved decision, measurable, measured decision) per
    corpus ECG, out of fold."""
    from regen.findings import FINDINGS

    c = FINDINGS.index(lab)
    known = targets.known[:, c]
    true = targets.y[:, c] & known
    ret = oof["p"][:, c] >= model.threshold[c]
    has = np.array([lab in m for m in measured])
    mpres = np.array([m[lab].present if lab in m else False for m in measured])
    return known, true, ret, has, mpres


def sinus_gate_rows(model, oof, targets, measured) -> None:
    """STACH and SBRAD say "sinus": the measured rate decides them only where the neighbours
    find a sinus rhythm plausible (out-of-fold retrieved probability of SR, STACH, SBRAD or
    SARRH at least g, on the decision's scale p / threshold, capped at 1); elsewhere the
    retrieved decision stands. g = 0 is MEASURED_DECIDES as it is."""
    from regen.findings import FINDINGS

    sinus = np.column_stack([np.minimum(1.0, oof["p"][:, FINDINGS.index(c)]
                                        / model.threshold[FINDINGS.index(c)])
                             for c in ("SR", "STACH", "SBRAD", "SARRH")]).max(axis=1)
    for lab in ("STACH", "SBRAD"):
        known, true, ret, has, mpres = decisions(lab, model, oof, targets, measured)
        line = f"{lab} measured where sinus is plausible (>= g):"
        for g in SINUS_GATES:
            pred = np.where(has & (sinus >= g), mpres, ret)
            line += f" g={g} {f1(pred & known, true):.3f}"
        print(line)


def afib_rows(model, oof, targets, views, ms) -> None:
    """AFIB: out-of-fold retrieved decisions against the same blended with an out-of-fold
    measured AF score."""
    from regen.findings import FINDINGS
    from regen.measured import (
        AF_CUT,
        af_features,
        af_probability,
        fit_weights,
        irregularity,
        linear_score,
    )

    c = FINDINGS.index("AFIB")
    known = targets.known[:, c]
    true = targets.y[:, c] & known
    fold = np.array([int(str(v.split or 0)) for v in views])
    feats = [None if m is None else af_features(m) for m in ms]
    has = np.array([f is not None for f in feats])
    x = np.array([f if f is not None else np.zeros(6) for f in feats])
    score = np.full(len(views), np.nan)
    for f in np.unique(fold):
        train = has & known & (fold != f)
        w = fit_weights(x[train], true[train].astype(float), l2=10.0)
        for i in np.flatnonzero(has & (fold == f)):
            score[i] = 1 / (1 + np.exp(-linear_score(x[i], w)))
    irr = np.array([np.inf if m is None else irregularity(m) for m in ms])
    p, thr = oof["p"][:, c], float(model.threshold[c])
    ret = p >= thr
    line = f"AFIB {true.sum()} positives: retrieved {f1(ret & known, true):.3f}"
    for b in (0.25, 0.5, 0.75, 1.0):
        blended = np.array([af_probability(float(p[i]), thr, None if np.isnan(score[i])
                                           else float(score[i]), float(irr[i]), blend=b,
                                           cut=AF_CUT) for i in range(len(p))])
        line += f"; blend {b} {f1((blended >= thr) & known, true):.3f}"
    print(line)


if __name__ == "__main__":
    raise SystemExit(main())
