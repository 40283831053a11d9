"""Findings that follow from measurements: by rule (rate, PR, QTc, axis, premature beats), the
measured AF score, and logistic models of the median beat's shape (bundle-branch and fascicular
blocks, infarction, hypertrophy, ST depression, T inversion; `morphology_findings`).

`measured_findings(m) -> list[MeasuredFinding]`: one finding per rule whose measurement is
"ok" in `m.quality`, with a soft probability (a logistic in the distance from the clinical
cut-off) and a one-line evidence string. These are what the findings stage fuses with the
neighbours' labels, so the interface stays `{label, probability, present, evidence}`.

Each rule has a clinical cut-off (HR > 100, PR > 200 ms, ...); the cut-off used and the
logistic slope are fitted by `fit_params` on PTB-XL folds 1-8 only (`python
bench/measure_accuracy.py --data PTBXL --fit` prints them) and copied into PARAMS below,
because PTB-XL's coders did not follow the textbook values (its SBRAD is mostly under 52 bpm).
Fold 9 only reports (docs/MEASUREMENTS.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from regen.errors import ConfigError
from regen.measure import (
    PACING_SPIKE_MV,
    QRS_SHAPE,
    QRS_SHAPE_LEADS,
    Measurements,
    prematurity,
    sinus_p_axis,
)


@dataclass(frozen=True)
class MeasuredFinding:
    """A finding decided from a measurement. label: a code of `regen.labeller.LABELS` where one
    exists (STACH, SBRAD, 1AVB, PVC, PAC), else PTB-XL's code (LNGQT) or the axis name (LAD,
    RAD). probability: soft, 0.5 at the cut-off. evidence: e.g. "HR 112 bpm > 100"."""

    label: str
    probability: float
    present: bool
    evidence: str
    # a rule's measured value (PR in ms for 1AVB); AFIB: the RR irregularity the blend's regular
    # gate reads; SARRH: the range of the normal-to-normal RR (ms); PACE: the spike (mV)
    value: float | None = None
    cut: float = 0.5               # the probability at which it is present


@dataclass(frozen=True)
class Rule:
    """label is present when `value(m)` is above (direction +1) or below (-1) a cut-off: the
    clinical one is `clinical`, the one used is fitted on folds 1-8 within `search` (PARAMS).
    `needs`: quality entries that must be "ok"; `sinus`: the rate rules also need a P wave
    on the median beat or a regular rhythm (not atrial fibrillation)."""

    label: str
    needs: tuple[str, ...]
    value: Callable[[Measurements], float]
    clinical: float
    direction: int
    search: tuple[float, float, float]       # start, stop, step of the cut-off search
    unit: str
    sinus: bool = False
    low: float = -math.inf        # the rule applies only to values >= low


def _n(m: Measurements, kind: str) -> float:
    return float(sum(b.kind == kind for b in m.premature_beats))


def _early(m: Measurements, kind: str) -> float:
    return max((b.prematurity for b in m.premature_beats if b.kind == kind), default=0.0)


def irregularity(m: Measurements) -> float:
    """Median absolute successive RR difference over the median RR (0: regular; atrial
    fibrillation is typically > 0.1). inf with fewer than 3 beats."""
    t = np.asarray(m.r_peaks_s, dtype=np.float64)
    return _rr_irregularity(np.diff(t)) if len(t) >= 3 else math.inf


def _rr_irregularity(rr: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(rr))) / np.median(rr))


# Irregularity below this counts as a regular rhythm for STACH / SBRAD when no P wave was
# measured; chosen on folds 1-8 by `fit_regular` (bench/measure_accuracy.py prints it).
REGULAR = 0.05


RULES: tuple[Rule, ...] = (
    Rule("STACH", ("hr_bpm",), lambda m: float(m.hr_bpm or 0), 100.0, +1, (90, 111, 1),
         "bpm", sinus=True),
    Rule("SBRAD", ("hr_bpm",), lambda m: float(m.hr_bpm or 0), 60.0, -1, (40, 61, 1),
         "bpm", sinus=True),
    Rule("1AVB", ("pr_ms",), lambda m: float(m.pr_ms or 0), 200.0, +1, (180, 241, 2), "ms"),
    # PTB-XL codes a long PR either as 1AVB or as LPR ("prolonged PR interval"); both are labels
    Rule("LPR", ("pr_ms",), lambda m: float(m.pr_ms or 0), 200.0, +1, (180, 241, 2), "ms"),
    Rule("LNGQT", ("qtc_bazett_ms",), lambda m: float(m.qtc_bazett_ms or 0), 460.0, +1,
         (440, 521, 5), "ms"),
    # below -90° the axis is extreme (northwest), not left
    Rule("LAD", ("axis_deg",), lambda m: float(m.axis_deg or 0), -30.0, -1, (-60, 1, 5), "°",
         low=-90.0),
    Rule("RAD", ("axis_deg",), lambda m: float(m.axis_deg or 0), 90.0, +1, (75, 136, 5), "°"),
    Rule("PVC", ("premature_beats",), lambda m: _n(m, "ventricular"), 0.5, +1, (0.5, 3, 1),
         "ventricular premature beat(s)"),
    # A PAC needs a P wave on the median beat (sinus rhythm: not atrial fibrillation); its
    # value is how early the earliest one came, so the cut-off separates it from sinus
    # arrhythmia.
    Rule("PAC", ("premature_beats", "pr_ms"), lambda m: _early(m, "supraventricular"), 0.15,
         +1, (0.15, 0.41, 0.01), "supraventricular premature beat(s)"),
)

# (cut-off, logistic slope per unit) of each rule, fitted on PTB-XL folds 1-8 by `fit_params`
# (python bench/measure_accuracy.py --data PTBXL --fit); fold 9 never chose anything.
PARAMS: dict[str, tuple[float, float]] = {
    "STACH": (101.0, 0.201), "SBRAD": (50.0, 0.4108), "1AVB": (210.0, 0.07283),
    "LPR": (212.0, 0.07879), "LNGQT": (475.0, 0.08392), "LAD": (-45.0, 0.08798),
    "RAD": (100.0, 0.1103), "PVC": (0.5, 5.861), "PAC": (0.22, 18.36),
}


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def _applies(rule: Rule, m: Measurements, regular: float) -> bool:
    if any(m.quality.get(k) != "ok" for k in rule.needs) or rule.value(m) < rule.low:
        return False
    if rule.sinus and not_sinus(m):
        return False
    return not rule.sinus or m.quality.get("pr_ms") == "ok" or irregularity(m) < regular


def not_sinus(m: Measurements) -> bool:
    """Whether the median beat's P wave has an axis no sinus P wave has (`sinus_p_axis`)."""
    return (m.p_axis_deg is not None and m.quality.get("p_axis_deg") == "ok"
            and not sinus_p_axis(m.p_axis_deg))


def _evidence(rule: Rule, m: Measurements, x: float, cut: float, present: bool) -> str:
    sign = (">" if present else "<=") if rule.direction > 0 else ("<" if present else ">=")
    if rule.label == "PVC":
        return f"{x:.0f} {rule.unit}"
    if rule.label == "PAC":
        n = _n(m, "supraventricular")
        return (f"{n:.0f} {rule.unit}" + (f", the earliest {x:.0%} early {sign} {cut:.0%}"
                                          if n else ""))
    name = {"bpm": "HR", "°": "QRS axis"}.get(rule.unit) or {
        "1AVB": "PR", "LPR": "PR", "LNGQT": "QTc (Bazett)"}[rule.label]
    if rule.unit == "°":
        return f"{name} {x:+.0f}° {sign} {cut:+.0f}°"
    return f"{name} {x:.0f} {rule.unit} {sign} {cut:g}"


def measured_findings(m: Measurements, params: dict[str, tuple[float, float]] | None = None,
                      regular: float = REGULAR) -> list[MeasuredFinding]:
    """The rule findings of `m`, in RULES order; a rule whose measurement is not "ok" (or, for
    STACH / SBRAD, with neither a P wave nor a rhythm more regular than `regular`, or with a P
    wave that is not sinus) gives none. Last, where the P axis is not a sinus one
    (`not_sinus`), an absent "SR" whose evidence is that axis.
    params: per-label (cut-off, slope); default PARAMS, fitted on folds 1-8."""
    params = PARAMS if params is None else params
    out = []
    for rule in RULES:
        if not _applies(rule, m, regular):
            continue
        cut, slope = params[rule.label]
        x = rule.value(m)
        present = (x - cut) * rule.direction > 0
        p = _sigmoid(slope * rule.direction * (x - cut))
        out.append(MeasuredFinding(rule.label, round(p, 4), bool(present),
                                   _evidence(rule, m, x, cut, present), value=round(x, 1)))
    if not_sinus(m):
        # the rhythm is not sinus, whatever its rate: no rule states a sinus rate above
        out.append(MeasuredFinding("SR", 0.0, False, f"P axis {m.p_axis_deg:+.0f}°, negative "
                                   "in I and aVF: not a sinus P wave",
                                   value=m.p_axis_deg, cut=0.5))
    return out


def fit_regular(ms: Sequence[Measurements], truth: Sequence[frozenset[str]],
                grid: Sequence[float] = (0.0, 0.02, 0.03, 0.05, 0.08, 0.12),
                prior: float = 0.05, tolerance: float = 0.01) -> float:
    """The REGULAR in `grid` with the best summed F1 of STACH and SBRAD, their cut-offs refit
    for each; among those within `tolerance` of the best, the one nearest `prior` (a 5 %
    median successive RR difference, the design value), so one record's flip does not move
    it. Pass training records only (folds 1-8)."""
    def score(regular: float) -> float:
        params = fit_params(ms, truth, regular)
        return sum(_f1([any(f.label == label and f.present
                            for f in measured_findings(m, params, regular)) for m in ms],
                       [label in t for t in truth]) for label in ("STACH", "SBRAD"))

    scores = {g: score(g) for g in grid}
    best = max(scores.values())
    return min((g for g, v in scores.items() if v >= best - tolerance),
               key=lambda g: abs(g - prior))


def _f1(pred: Sequence[bool], true: Sequence[bool]) -> float:
    tp = sum(p and t for p, t in zip(pred, true))
    return 2 * tp / (sum(pred) + sum(true)) if tp else 0.0


def fit_params(ms: Sequence[Measurements], truth: Sequence[frozenset[str]],
               regular: float = REGULAR) -> dict[str, tuple[float, float]]:
    """Per rule: the cut-off in `rule.search` with the best F1, then the maximum-likelihood
    slope of the logistic centred there. Pass training records only (folds 1-8); a record
    where the rule does not apply counts as predicted absent."""
    out = {}
    for rule in RULES:
        ok = np.array([_applies(rule, m, regular) for m in ms])
        x = np.array([rule.value(m) if a else np.nan for m, a in zip(ms, ok)])
        y = np.array([rule.label in t for t in truth])
        best, best_f1 = rule.clinical, -1.0
        for cut in np.arange(*rule.search):
            pred = ok & ((x - cut) * rule.direction > 0)
            tp = int((pred & y).sum())
            f1 = 2 * tp / (pred.sum() + y.sum()) if tp else 0.0
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(cut), f1
        z = rule.direction * (x[ok] - best)
        out[rule.label] = (round(best, 3), _fit_1d(z, y[ok].astype(np.float64)))
    return out


def _fit_1d(z: np.ndarray, y: np.ndarray) -> float:
    """argmax_s sum log-likelihood of y ~ sigmoid(s z), s >= 0, by a log-spaced grid then
    golden-section refinement (one parameter: robust where Newton overshoots on separable
    data)."""
    def nll(s: float) -> float:
        t = np.clip(s * z, -60, 60)
        return float(np.sum(np.logaddexp(0, t) - y * t))

    grid = np.logspace(-4, 2, 61)
    i = int(np.argmin([nll(s) for s in grid]))
    lo, hi = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(f"{(lo + hi) / 2:.4g}")


def ectopy_score(m: Measurements) -> float:
    """A continuous score for "has extra beats": how premature the most premature beat is
    (max over beats of 1 - RR / median of the up to 8 RR around it), plus 0.3 when a beat was
    classed ventricular (a PVC's QRS is evidence beyond its timing). 0 with fewer than 3
    beats. The 0.3 was compared with 0 on folds 1-8 only (docs/MEASUREMENTS.md)."""
    t = np.asarray(m.r_peaks_s, dtype=np.float64)
    if len(t) < 3:
        return 0.0
    early = max(0.0, float(prematurity(np.diff(t)).max()))
    return early + 0.3 * any(b.kind == "ventricular" for b in m.premature_beats)


# -- a measured atrial-fibrillation score --------------------------------------------------------
# AF is an irregularly irregular rhythm without P waves. Its features come from what `measure`
# already has (R peaks, whether a P wave was found on the median beat), so a scan pays nothing
# per window beyond a few array operations on ~10 RR intervals, and it works on one lead.
AF_FEATURES = ("irregularity", "nrmssd", "pnn50", "turning_points", "no_p_wave",
               "p_consistency")
AF_MIN_BEATS = 4        # fewer R peaks: no score (irregularity alone is undefined below 3)
# logistic weights on the features (intercept last), fitted on PTB-XL folds 1-8 (12-lead and
# lead-II measurements of each ECG, AFIB from scp_codes) by `fit_weights`; leave-one-fold-out CV
# and the command: bench/af_fit.py, docs/SCAN.md. Fold 9 chose nothing.
# the measured score's cut-off, and the irregularity below which a rhythm is regular (never AF:
# on folds 1-8, 0.05 keeps 94.5% of the AFIB ECGs and drops 88% of the others; REGULAR's
# value). AF_CUT chosen with the scan's blend (regen.scan.AF_BLEND, docs/SCAN.md).
AF_CUT = 0.7
AF_REGULAR = 0.05
# Refitted after the QRS edge moved (regen.beats.QRS_FRACTION 0.08 shifts the P-wave search):
# the same features and L2 won (CV log loss 0.0535); the weights before were (0.6707, 0.6233,
# -0.141, 0.4197, 2.589, -6.653, 3.966).
AF_WEIGHTS: tuple[float, ...] = (0.6642, 0.6288, -0.006797, 0.2145, 2.576, -6.774, 4.106)


def af_features(m: Measurements) -> np.ndarray | None:
    """AF_FEATURES of one measurement: median |successive RR difference| / median RR
    (`irregularity`), RMSSD / mean RR, the share of successive RR differences over 50 ms, the
    share of RR intervals that are a turning point (a local maximum or minimum: 2/3 for a
    random series, fewer for a slowly varying sinus rhythm), 1 when no P wave was found on
    the median beat, and how alike the stretch before each QRS is from beat to beat
    (`regen.measure.p_consistency`, 0 when not measurable). The two ratios enter as
    log(min(ratio, 0.5) + 0.01): capped so one missed R peak does not dominate, logged
    because that fitted folds 1-8 better in CV (bench/af_fit.py prints both). None with
    fewer than AF_MIN_BEATS R peaks."""
    t = np.asarray(m.r_peaks_s, dtype=np.float64)
    if len(t) < AF_MIN_BEATS:
        return None
    no_p = float(m.quality.get("pr_ms") != "ok")
    pc = 0.0 if m.p_consistency is None else m.p_consistency
    return np.append(_rr_features(np.diff(t)), [no_p, pc])


def _rr_features(rr: np.ndarray) -> np.ndarray:
    """The four RR features of `af_features` from RR intervals (s), at least two."""
    d = np.diff(rr)
    irr = _rr_irregularity(rr)
    nrmssd = float(np.sqrt(np.mean(d * d)) / np.mean(rr))
    pnn50 = float(np.mean(np.abs(d) > 0.05))
    turns = float(np.mean(d[:-1] * d[1:] < 0)) if len(d) > 1 else 0.0
    return np.array([math.log(min(irr, 0.5) + 0.01), math.log(min(nrmssd, 0.5) + 0.01), pnn50,
                     turns])


# An interval over PAUSE times the median normal one is a pause (a blocked beat, a missed R
# peak), not the slow swing of sinus arrhythmia. With it the score's CV log loss on folds 1-8 is
# 0.1031, without 0.1059; on every RR interval, premature beats' included, 0.1102
# (bench/sarrh_fit.py).
PAUSE = 1.5


def nn_intervals(m: Measurements) -> np.ndarray:
    """RR intervals (s) from one normal beat to the next: the interval ending at each premature
    beat (`Measurements.premature_beats`) and the one after it are left out, as heart-rate
    variability measures do, and so are pauses (over PAUSE times the median)."""
    t = np.asarray(m.r_peaks_s, dtype=np.float64)
    if len(t) < 2:
        return np.zeros(0)
    keep = np.ones(len(t) - 1, dtype=bool)
    for b in m.premature_beats:
        j = int(np.argmin(np.abs(t - b.time_s)))
        if abs(t[j] - b.time_s) < 0.01:
            keep[max(j - 1, 0):j + 1] = False
    rr = np.diff(t)[keep]
    return rr[rr <= PAUSE * np.median(rr)] if len(rr) else rr


def linear_score(x: np.ndarray, weights: Sequence[float]) -> float:
    """The logistic model's linear score for features x (weights: one per feature, then the
    intercept)."""
    w = np.asarray(weights, dtype=np.float64)
    return float(x @ w[:-1] + w[-1])


def af_score(m: Measurements, weights: Sequence[float] | None = None) -> float | None:
    """Probability of atrial fibrillation from the rhythm alone (`af_features` through the
    logistic AF_WEIGHTS); None when too few beats were found to say."""
    x = af_features(m)
    if x is None:
        return None
    return _sigmoid(linear_score(x, AF_WEIGHTS if weights is None else weights))


def fit_weights(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[float, ...]:
    """Weights (per feature, then the intercept) of an L2-penalised logistic regression (the AF
    score's and the morphology models') of
    y (N,) on x (N, features) (`regen.metrics.fit_logistic` on z-scores, so the penalty treats
    every feature alike; weights returned on x's scale). Pass training records only (folds
    1-8)."""
    from regen.metrics import fit_logistic

    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    w, b = fit_logistic((x - mu) / sd, y, l2)
    raw = np.append(w / sd, b - float(np.sum(w * mu / sd)))
    return tuple(float(f"{v:.4g}") for v in raw)


def oof_probability(x: np.ndarray, y: np.ndarray, groups: np.ndarray, l2: float) -> np.ndarray:
    """(N,) leave-one-group-out probabilities of `fit_weights`' logistic model: each row scored
    by the weights fitted on the other groups (folds)."""
    p = np.zeros(len(y))
    for g in np.unique(groups):
        tr = groups != g
        w = np.asarray(fit_weights(x[tr], np.asarray(y[tr], dtype=np.float64), l2))
        p[~tr] = 1 / (1 + np.exp(-(x[~tr] @ w[:-1] + w[-1])))
    return p


def af_probability(retrieved: float, threshold: float, score: float | None,
                   irregularity: float, blend: float, cut: float = AF_CUT,
                   regular: float = AF_REGULAR) -> float:
    """An AFIB probability (a scan window's, a report's) on the retrieved finding's scale (its
    `threshold` decides): 0 where the rhythm is regular (irregularity < `regular`); else the
    retrieved probability and the measured AF `score` blended in logit units, each relative to
    its own cut-off:
    logit(p) - logit(threshold) = (1 - blend) (logit(retrieved) - logit(threshold))
    + blend (logit(score) - logit(cut)). Without a score (too few beats) the retrieved one
    stands."""
    if irregularity < regular:
        return 0.0
    if score is None or blend <= 0:
        return retrieved
    eps = 1e-4

    def lg(p: float) -> float:
        p = min(max(p, eps), 1 - eps)
        return math.log(p / (1 - p))

    z = (1 - blend) * (lg(retrieved) - lg(threshold)) + blend * (lg(score) - lg(cut))
    return 1 / (1 + math.exp(-(z + lg(threshold))))


def af_finding(m: Measurements) -> MeasuredFinding | None:
    """The measured AF score as a finding (label AFIB, `value` the RR irregularity), or None
    with too few beats. It does not decide alone: reports and scans blend it with the
    retrieved AFIB probability (`af_probability`)."""
    score = af_score(m)
    if score is None:
        return None
    irr = irregularity(m)
    regular = irr < AF_REGULAR
    p_wave = m.quality.get("pr_ms") == "ok"
    evidence = (f"RR irregularity {irr:.0%}" + (" (regular)" if regular else "")
                + (", P wave on the median beat" if p_wave else ", no P wave on the median beat")
                + f": AF score {score:.2f}")
    return MeasuredFinding("AFIB", round(score, 4), bool(score >= AF_CUT and not regular),
                           evidence, value=round(irr, 4))


# Sinus arrhythmia: a sinus rhythm whose rate rises and falls (with breathing), so the RR
# intervals vary slowly and widely. Scored from the rhythm alone by a logistic model on
# SARRH_FEATURES, only where the median beat has a P wave that could be sinus (no P wave, or one
# `not_sinus`: no score). The features, L2, weights and the cut are chosen on PTB-XL folds 1-8
# (12-lead and lead-II measurements of each ECG, SARRH from scp_codes) by leave-one-fold-out
# CV: `python bench/sarrh_fit.py --data PTBXL`. Fold 9 chose nothing.
SARRH_FEATURES = ("irregularity", "nrmssd", "pnn50", "turning_points", "p_consistency",
                  "rr_range")
SARRH_WEIGHTS: tuple[float, ...] = (-0.1594, 1.501, 1.062, -0.3745, 4.903, 1.181, -1.824)
SARRH_L2 = 10.0
SARRH_CUT = 0.2         # bench/measured_vs_retrieved.py, the SARRH rows (regen/diagnose.py)


def sarrh_features(m: Measurements) -> np.ndarray | None:
    """SARRH_FEATURES of one measurement, on its normal-to-normal intervals (`nn_intervals`:
    premature beats vary the RR too, but they are not sinus arrhythmia): the four RR features
    of `af_features`, the P wave's consistency, and the range of the intervals over their
    median as log(min(range, 1) + 0.01). None without a P wave that could be sinus or with
    fewer than AF_MIN_BEATS - 1 such intervals."""
    got = _sarrh_input(m)
    return None if got is None else got[0]


def _sarrh_input(m: Measurements) -> tuple[np.ndarray, np.ndarray] | None:
    """(`sarrh_features`, the normal-to-normal intervals in s they were read from), or None."""
    if m.quality.get("pr_ms") != "ok" or not_sinus(m):
        return None
    rr = nn_intervals(m)
    if len(rr) < AF_MIN_BEATS - 1:
        return None
    spread = float((rr.max() - rr.min()) / np.median(rr))
    pc = 0.0 if m.p_consistency is None else m.p_consistency
    return np.append(_rr_features(rr), [pc, math.log(min(spread, 1.0) + 0.01)]), rr


def sarrh_finding(m: Measurements) -> MeasuredFinding | None:
    """The measured sinus-arrhythmia score as a finding (label SARRH, present at SARRH_CUT), or
    None where `sarrh_features` gives nothing. A report lets it choose between "sinus rhythm"
    and "sinus arrhythmia" (`regen.diagnose`)."""
    got = _sarrh_input(m)
    if got is None:
        return None
    x, rr = got[0], got[1] * 1000.0
    p = _sigmoid(linear_score(x, SARRH_WEIGHTS))
    return MeasuredFinding(
        "SARRH", round(p, 4), bool(p >= SARRH_CUT),
        f"RR {rr.min():.0f}-{rr.max():.0f} ms between normal beats, a P wave before each QRS: "
        f"sinus arrhythmia score {p:.2f} (cut {SARRH_CUT:.2f})",
        value=round(float(rr.max() - rr.min()), 1), cut=SARRH_CUT)


# How fast the pacemaker probability rises about PACING_SPIKE_MV, in log units: folds 1-8's
# largest unpaced spike (0.317 mV) gets 0.01, its paced one (1.181 mV) 0.99.
PACING_SLOPE = 7.2


def pacing_finding(m: Measurements) -> MeasuredFinding | None:
    """A pacemaker (label PACE) from the spikes before the QRS (`regen.measure.pacing_spike`),
    or None where the record is too slow to keep them (under 250 Hz)."""
    v = m.pacing_spike_mv
    if v is None:
        return None
    p = _sigmoid(PACING_SLOPE * math.log(max(v, 1e-3) / PACING_SPIKE_MV))
    present = v >= PACING_SPIKE_MV
    return MeasuredFinding(
        "PACE", round(p, 4), bool(present),
        f"narrow spikes of {v:.2f} mV before the QRS (median over beats) "
        f"{'>=' if present else '<'} {PACING_SPIKE_MV}: "
        f"{'pacemaker' if present else 'no pacing spikes'}", value=v)


def all_findings(m: Measurements) -> list[MeasuredFinding]:
    """The rule findings, the measured AF and sinus-arrhythmia scores, pacing spikes and the
    morphology findings: what `regen measure`, `/v1/measure` and a report's findings take from
    the measurements."""
    scores = [f for f in (af_finding(m), sarrh_finding(m), pacing_finding(m)) if f is not None]
    return measured_findings(m) + scores + morphology_findings(m)


# Findings read from the shape of the median beat: bundle-branch and fascicular blocks (QRS
# duration, where its last part points: RBBB terminal R' in V1 and slurred S in I and V6, LBBB
# V1 negative and broad R in I, aVL, V5, V6), Q waves and infarction (its first part),
# hypertrophy (voltage), ischaemia and T-wave changes (ST level, T wave). A logistic model per
# label on a set of `regen.measure.qrs_shape` features (its names in the model) turns them into
# a probability. The feature set, the L2 and the cut of each label are chosen, and its weights
# fitted, on PTB-XL folds 1-8 against the labeller's reading of each report by
# `python bench/morphology_fit.py --data PTBXL --write` (leave-one-fold-out CV; fold 9 chose
# nothing) and shipped in MORPHOLOGY_WEIGHTS. A label is measured only when every lead its
# features name is present.
MORPHOLOGY_WEIGHTS = Path(__file__).resolve().parent / "weights" / "morphology.json"
MORPHOLOGY_NAMES = {"CRBBB": "right bundle branch block", "CLBBB": "left bundle branch block",
                    "LAFB": "left anterior fascicular block",
                    "IRBBB": "incomplete right bundle branch block",
                    "IMI": "inferior infarction", "ASMI": "anteroseptal infarction",
                    "QWAVE": "Q waves", "LVH": "left ventricular hypertrophy",
                    "VCLVH": "voltage criteria for LVH", "STD_": "ST depression",
                    "INVT": "inverted T waves", "LOWT": "low or flat T waves"}


def morphology_features(m: Measurements, names: Sequence[str]) -> np.ndarray | None:
    """The named features of `m`: "qrs_ms", or "LEAD:FIELD" with FIELD one of
    `regen.measure.QRS_SHAPE`; None when the QRS was not measured or a named lead is missing."""
    if m.quality.get("qrs_ms") != "ok" or m.qrs_ms is None:
        return None
    out = []
    for name in names:
        if name == "qrs_ms":
            out.append(float(m.qrs_ms))
            continue
        lead, _, what = name.partition(":")
        shape = m.qrs_shape.get(lead)
        if shape is None:
            return None
        out.append(shape[QRS_SHAPE.index(what)])
    return np.array(out, dtype=np.float64)


def feature_names(leads: Sequence[str], fields: Sequence[str] = QRS_SHAPE) -> list[str]:
    """"qrs_ms", then "LEAD:FIELD" for each lead and field."""
    return ["qrs_ms"] + [f"{lead}:{f}" for lead in leads for f in fields]


@lru_cache(maxsize=4)
def morphology_model(path: str | Path = MORPHOLOGY_WEIGHTS) -> dict[str, dict]:
    """label -> {"features", "weights" (per feature, then the intercept, on the features' own
    scale), "cut", ...}."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the morphology model ({exc}); reinstall regen "
                          "or refit it with bench/morphology_fit.py --write") from exc
    return dict(d["labels"])


def morphology_findings(m: Measurements, model: dict[str, dict] | None = None
                        ) -> list[MeasuredFinding]:
    """A finding per label of the morphology model whose features `m` has; present at the
    label's cut."""
    out = []
    for label, spec in (model or morphology_model()).items():
        x = morphology_features(m, spec["features"])
        if x is None:
            continue
        p = _sigmoid(linear_score(x, spec["weights"]))
        cut = float(spec["cut"])
        leads = sorted({f.partition(":")[0] for f in spec["features"] if ":" in f},
                       key=QRS_SHAPE_LEADS.index)
        out.append(MeasuredFinding(
            label, round(p, 4), bool(p >= cut),
            f"QRS {m.qrs_ms:.0f} ms and the median beat's shape in {_span(leads)}: "
            f"{MORPHOLOGY_NAMES.get(label, label)} score {p:.2f} (cut {cut:.2f})", cut=cut))
    return out


def _span(leads: Sequence[str]) -> str:
    return "all 12 leads" if len(leads) == len(QRS_SHAPE_LEADS) else ", ".join(leads)
