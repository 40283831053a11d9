"""Accuracy of `regen.measure` on real data, each figure beside a baseline from the same run.

    python bench/measure_accuracy.py --data /path/to/ptbxl --mitdb /path/to/mitdb/100 [--fit]

(a) MIT-BIH 100, whole record: R-peak sensitivity / PPV within 50 ms of the reference beat
    annotations, and per-minute HR MAE; baseline wfdb's XQRS detector on the same record.
(b) Frontal axis class (left / normal / right) against PTB-XL `heart_axis` (MID -> normal;
    LAD, ALAD, AXL -> left; RAD, ARAD, AXR -> right; SAG left out), folds 1-8 and 9 apart.
    Two ways: our standard classes (-30 / +90 degrees), and boundaries chosen on folds 1-8 for
    PTB-XL's German convention (its LAD, "Linkstyp", reaches up to about +30 degrees).
    Baseline: the majority class of folds 1-8.
(c) "Has extra beats" AUC (PTB-XL `extra_beats` non-empty) of `ectopy_score`, per split;
    baseline: the RR coefficient of variation.
(d) F1 of `measured_findings` against each record's scp_codes (truth_labels) for STACH,
    SBRAD, 1AVB, PVC, PAC, LNGQT, per split; LAD / RAD against heart_axis ALAD / RAD+ARAD.
    Baseline: the labels' prevalence (F1 of always saying "present").
(e) Speed: p50 / p95 of `measure` on 10-s 12-lead records at 100 and 500 Hz, beside wfdb's
    XQRS (R peaks only, one lead) on the same records.

Every run refits the rules' cut-offs and slopes on folds 1-8 only (`regen.measured.fit_params`)
and says whether they equal the shipped `regen.measured.PARAMS`; --fit prints them as a literal
to paste there. (d) scores the shipped PARAMS and, beside them, the clinical cut-offs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from regen.corpus import load_ptbxl
from regen.labeller import truth_labels
from regen.measure import Measurements, measure, measure_windows
from regen.measured import (
    PARAMS,
    REGULAR,
    RULES,
    ectopy_score,
    fit_params,
    fit_regular,
    measured_findings,
)
from regen.reader import read_ecg

AXIS = {"MID": "normal", "LAD": "left", "ALAD": "left", "AXL": "left", "RAD": "right",
        "ARAD": "right", "AXR": "right"}
RULE_LABELS = ("STACH", "SBRAD", "1AVB", "LPR", "PVC", "PAC", "LNGQT")
SPLITS = {"1-8": set(range(1, 9)), "9": {9}}
BEATS = set("NLRBAaJSVrFejnE/fQ?")


def match(ref: np.ndarray, test: np.ndarray, tol: int) -> int:
    """How many of ref have a test sample within tol samples (both sorted)."""
    if not len(test):
        return 0
    j = np.clip(np.searchsorted(test, ref), 1, len(test) - 1)
    d = np.minimum(np.abs(test[j] - ref), np.abs(test[j - 1] - ref))
    return int((d <= tol).sum())


def minute_hr(peaks_s: np.ndarray, minutes: int) -> np.ndarray:
    """Mean HR (bpm) of each minute from the RR intervals that end in it."""
    out = np.full(minutes, np.nan)
    rr, end = np.diff(peaks_s), peaks_s[1:]
    for k in range(minutes):
        sel = rr[(end >= 60 * k) & (end < 60 * (k + 1))]
        if len(sel):
            out[k] = 60.0 / sel.mean()
    return out


def section_mitdb(path: str) -> None:
    import wfdb
    from wfdb import processing

    ecg = read_ecg(path)
    ann = wfdb.rdann(path, "atr")
    ref = np.array([s for s, y in zip(ann.sample, ann.symbol) if y in BEATS])
    tol, fs = int(round(0.05 * ecg.fs)), ecg.fs
    minutes = int(ecg.duration_s // 60)
    ref_hr = minute_hr(ref / fs, minutes)
    t0 = time.perf_counter()
    ours = np.round(np.array(measure(ecg).r_peaks_s) * fs).astype(np.int64)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    xq = np.sort(processing.xqrs_detect(ecg.signal[0].astype(np.float64), fs=fs, verbose=False))
    t_xq = time.perf_counter() - t0
    win = measure_windows(ecg, 60.0, 60.0)[:minutes]
    win_hr = np.array([np.nan if w.hr_bpm is None else w.hr_bpm for w in win])
    print(f"(a) MIT-BIH {Path(path).name}: {len(ref)} reference beats, {ecg.duration_s:.0f} s, "
          f"{ecg.n_leads} leads at {fs:.0f} Hz")
    print(f"    {'detector':<34}{'beats':>7}{'Se':>8}{'PPV':>8}{'HR MAE':>9}{'time s':>8}")
    for name, peaks, t in (("regen measure (both leads)", ours, t_ours),
                           ("wfdb xqrs (lead MLII) baseline", xq, t_xq)):
        se, ppv = match(ref, peaks, tol) / len(ref), match(peaks, ref, tol) / max(1, len(peaks))
        mae = np.nanmean(np.abs(minute_hr(peaks / fs, minutes) - ref_hr))
        print(f"    {name:<34}{len(peaks):>7}{se:>8.4f}{ppv:>8.4f}{mae:>9.3f}{t:>8.2f}")
    print(f"    {'measure_windows(60 s) hr_bpm':<34}{'':>7}{'':>8}{'':>8}"
          f"{np.nanmean(np.abs(win_hr - ref_hr)):>9.3f}")


def measure_ptbxl(data: str) -> list[tuple[int, dict[str, str], frozenset[str], Measurements]]:
    rows = []
    for rec in load_ptbxl(data, folds=range(1, 10)):
        attrs = dict(rec.attributes)
        truth = set(truth_labels(rec.scp, RULE_LABELS))
        axis = attrs.get("axis")
        if axis == "ALAD":
            truth.add("LAD")
        if axis in ("RAD", "ARAD"):
            truth.add("RAD")
        rows.append((int(rec.split or 0), attrs, frozenset(truth), measure(read_ecg(rec.path))))
    return rows


def _split(rows: list, name: str) -> list:
    return [r for r in rows if r[0] in SPLITS[name]]


def section_axis(rows: list) -> None:
    have = [(f, AXIS[a["axis"]], m.axis_deg) for f, a, _, m in rows if a.get("axis") in AXIS]
    train = [(c, d) for f, c, d in have if f in SPLITS["1-8"] and d is not None]
    majority = max(("normal", "left", "right"), key=lambda c: sum(t == c for t, _ in train))

    def cls(d: float, lo: float, hi: float) -> str:
        return "left" if d < lo else "right" if d > hi else "normal"

    grid = [(lo, hi) for lo in range(-40, 61, 5) for hi in range(60, 151, 5)]
    lo, hi = max(grid, key=lambda g: sum(cls(d, *g) == c for c, d in train))
    print(f"(b) frontal axis vs PTB-XL heart_axis; boundaries chosen on folds 1-8: left < {lo}°, "
          f"right > {hi}°; majority class of folds 1-8: {majority}")
    print(f"    {'split':<6}{'n':>6}{'measured':>10}{'std -30/+90':>13}{'fitted':>9}"
          f"{'majority':>10}")
    for name in SPLITS:
        part = [(c, d) for f, c, d in have if f in SPLITS[name]]
        ok = [(c, d) for c, d in part if d is not None]
        n = len(part)
        std = sum(cls(d, -30, 90) == c for c, d in ok) / n
        fit = sum(cls(d, lo, hi) == c for c, d in ok) / n
        maj = sum(c == majority for c, _ in part) / n
        print(f"    {name:<6}{n:>6}{len(ok) / n:>10.3f}{std:>13.3f}{fit:>9.3f}{maj:>10.3f}")


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (ties share ranks)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    pos, neg = int(y.sum()), int((~y).sum())
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg)) if pos and neg else float("nan")


def section_extra(rows: list) -> None:
    print("(c) 'has extra beats' (PTB-XL extra_beats non-empty) AUC")
    print(f"    {'split':<6}{'n':>6}{'pos':>6}{'ectopy_score':>14}{'n premature':>13}"
          f"{'RR CV (baseline)':>18}")
    for name in SPLITS:
        part = [(a, m) for _, a, _, m in _split(rows, name)]
        y = np.array(["extra_systole" in a for a, _ in part])
        s = np.array([ectopy_score(m) for _, m in part])
        n_pb = np.array([len(m.premature_beats) for _, m in part], dtype=float)
        cv = np.array([(m.rr_sd_ms or 0) / (m.rr_ms or 1) for _, m in part])
        print(f"    {name:<6}{len(y):>6}{int(y.sum()):>6}{auc(s, y):>14.3f}{auc(n_pb, y):>13.3f}"
              f"{auc(cv, y):>18.3f}")


def f1(pred: list[bool], true: list[bool]) -> float:
    tp = sum(p and t for p, t in zip(pred, true))
    fp = sum(p and not t for p, t in zip(pred, true))
    fn = sum(t and not p for p, t in zip(pred, true))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _predict(part: list, label: str, params: dict[str, tuple[float, float]]) -> list[bool]:
    return [any(f.label == label and f.present for f in measured_findings(m, params))
            for *_, m in part]


def section_findings(rows: list) -> None:
    clinical = {r.label: (r.clinical, PARAMS[r.label][1]) for r in RULES}
    print("(d) measured_findings F1 against scp_codes (LAD/RAD: heart_axis ALAD, RAD+ARAD); a "
          "rule that does not apply counts as absent.\n    fitted: the cut-offs of PARAMS (chosen "
          "on folds 1-8); clinical: the textbook cut-off; prev.: F1 of always 'present' "
          "(baseline)")
    print(f"    {'label':<7}{'cut':>7}" + "".join(
        f"{'F1 ' + s:>9}{'P':>6}{'R':>6}{'clin.':>7}{'pos':>5}{'prev.':>7}" for s in SPLITS))
    for rule in RULES:
        label = rule.label
        line = f"    {label:<7}{PARAMS[label][0]:>7g}"
        for name in SPLITS:
            part = _split(rows, name)
            true = [label in t for _, _, t, _ in part]

            ours = _predict(part, label, PARAMS)
            tp = sum(p and t for p, t in zip(ours, true))
            prec, rec = tp / max(1, sum(ours)), tp / max(1, sum(true))
            line += (f"{f1(ours, true):>9.3f}{prec:>6.2f}{rec:>6.2f}"
                     f"{f1(_predict(part, label, clinical), true):>7.3f}{sum(true):>5}"
                     f"{f1([True] * len(true), true):>7.3f}")
        print(line)
    line = f"    {'1AVB|LPR':<7}{PARAMS['1AVB'][0]:>7g}"
    for name in SPLITS:        # the 1AVB rule against either code: PTB-XL uses both for PR>200
        part = _split(rows, name)
        true = [bool({"1AVB", "LPR"} & t) for _, _, t, _ in part]
        ours = _predict(part, "1AVB", PARAMS)
        tp = sum(p and t for p, t in zip(ours, true))
        line += (f"{f1(ours, true):>9.3f}{tp / max(1, sum(ours)):>6.2f}"
                 f"{tp / max(1, sum(true)):>6.2f}{'':>7}{sum(true):>5}"
                 f"{f1([True] * len(true), true):>7.3f}")
    print(line)


def section_speed(data: str, n: int = 40) -> None:
    from wfdb import processing

    print("(e) speed per 10-s 12-lead record (ms)")
    for rate in (100, 500):
        recs = load_ptbxl(data, folds=range(1, 10), rate=rate)[:n]
        ecgs = [read_ecg(r.path) for r in recs]
        ours, base = [], []
        for e in ecgs:
            t0 = time.perf_counter()
            measure(e)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            processing.xqrs_detect(e.signal[1].astype(np.float64), fs=e.fs, verbose=False)
            base.append(time.perf_counter() - t0)
        print(f"    {rate} Hz, {len(ecgs)} records: measure p50 {np.median(ours) * 1e3:.1f} "
              f"p95 {np.percentile(ours, 95) * 1e3:.1f}; wfdb xqrs (R peaks only, lead II) "
              f"p50 {np.median(base) * 1e3:.1f} p95 {np.percentile(base, 95) * 1e3:.1f}")


def sweep_min_p(data: str, values: tuple[float, ...] = (0.01, 0.015, 0.02, 0.03)) -> None:
    """How regen.beats.MIN_P_MV (the smallest P wave the median beat may show) was chosen, on
    folds 1-8 only: share of records with a PR, and the best F1 of PR > cut for 1AVB|LPR."""
    import regen.beats

    recs = load_ptbxl(data, folds=range(1, 9))
    ecgs = [read_ecg(r.path) for r in recs]
    y = np.array([bool({"1AVB", "LPR"} & set(r.scp)) for r in recs])
    shipped = regen.beats.MIN_P_MV
    print(f"MIN_P_MV sweep on folds 1-8 (shipped: {shipped:g})")
    try:
        for v in values:
            regen.beats.MIN_P_MV = v      # a bench-only override of the module constant
            pr = np.array([np.nan if m.pr_ms is None else m.pr_ms
                           for m in (measure(e) for e in ecgs)])
            best = max((f1(list(pr > c), list(y)), c) for c in range(180, 241, 2))
            print(f"    {v:<6g} PR measured {np.isfinite(pr).mean():.3f}  "
                  f"(1AVB|LPR records {np.isfinite(pr[y]).mean():.3f})  best F1 {best[0]:.3f} "
                  f"at PR > {best[1]}")
    finally:
        regen.beats.MIN_P_MV = shipped


def sweep_qrs(data: str, values: tuple[float, ...] = (0.05, 0.06, 0.07, 0.08, 0.10, 0.12)
              ) -> None:
    """How regen.beats.QRS_FRACTION (where the spatial velocity marks the QRS edges) was
    chosen, on folds 1-8 only: F1 of the clinical rule QRS >= 120 ms against a complete bundle
    branch block (CRBBB or CLBBB, the labeller's reading of each report), with the median QRS
    of normal, CRBBB and CLBBB ECGs beside it."""
    import regen.beats
    from regen.labeller import label_report

    recs = load_ptbxl(data, folds=range(1, 9))
    ecgs = [read_ecg(r.path) for r in recs]
    labels = [label_report(r.report("en")) for r in recs]
    norm, crbbb, clbbb = (np.array([c in lab for lab in labels]) for c in
                          ("NORM", "CRBBB", "CLBBB"))
    shipped = regen.beats.QRS_FRACTION
    print(f"QRS_FRACTION sweep on folds 1-8 (shipped: {shipped:g}); QRS >= 120 ms against "
          f"CRBBB|CLBBB ({int((crbbb | clbbb).sum())} ECGs)")
    try:
        for v in values:
            regen.beats.QRS_FRACTION = v      # a bench-only override of the module constant
            q = np.array([np.nan if m.qrs_ms is None else m.qrs_ms
                          for m in (measure(e) for e in ecgs)])
            print(f"    {v:<5g} F1 {f1(list(q >= 120), list(crbbb | clbbb)):.3f}; median QRS "
                  f"normal {np.nanmedian(q[norm]):.0f} ms, CRBBB {np.nanmedian(q[crbbb]):.0f}, "
                  f"CLBBB {np.nanmedian(q[clbbb]):.0f}")
    finally:
        regen.beats.QRS_FRACTION = shipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="PTB-XL folder (ptbxl_database.csv, records)")
    ap.add_argument("--mitdb", help="MIT-BIH record path, e.g. .../mitdb/100")
    ap.add_argument("--fit", action="store_true",
                    help="print the rule parameters fitted on folds 1-8 as a literal")
    ap.add_argument("--sweep-min-p", action="store_true",
                    help="re-run the folds 1-8 sweep that chose regen.beats.MIN_P_MV")
    ap.add_argument("--sweep-qrs", action="store_true",
                    help="re-run the folds 1-8 sweep that chose regen.beats.QRS_FRACTION")
    args = ap.parse_args(argv)
    if args.sweep_min_p:
        sweep_min_p(args.data)
    if args.sweep_qrs:
        sweep_qrs(args.data)
    if args.mitdb:
        section_mitdb(args.mitdb)
    t0 = time.perf_counter()
    rows = measure_ptbxl(args.data)
    print(f"measured {len(rows)} PTB-XL records of folds 1-9 in {time.perf_counter() - t0:.1f} s")
    train = _split(rows, "1-8")
    ms, truth = [m for *_, m in train], [t for _, _, t, _ in train]
    regular = fit_regular(ms, truth)
    fitted = fit_params(ms, truth, regular)
    same = fitted == PARAMS and regular == REGULAR
    print(f"rule cut-offs and slopes refitted on folds 1-8: "
          f"{'equal to' if same else 'DIFFERENT FROM'} the shipped regen.measured.PARAMS, "
          f"REGULAR")
    if args.fit or not same:
        print(f"    fitted:  REGULAR = {regular}; PARAMS = {fitted!r}")
        print(f"    shipped: REGULAR = {REGULAR}; PARAMS = {PARAMS!r}")
    section_axis(rows)
    section_extra(rows)
    section_findings(rows)
    section_speed(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
