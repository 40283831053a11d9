"""Findings that follow from measurements by rule: rate, PR, QTc, axis, premature beats.

`measured_findings(m) -> list[MeasuredFinding]`: one finding per rule whose measurement is
"ok" in `m.quality`, with a soft probability (a logistic in the distance from the clinical
cut-off) and a one-line evidence string. These are what the findings stage fuses with the
neighbours' labels, so the interface stays `{label, probability, present, evidence}`.

The cut-offs are the clinical ones; each logistic slope is fitted by `fit_slopes` on PTB-XL
folds 1-8 only (`python bench/measure_accuracy.py --data PTBXL --fit` prints them) and copied
into SLOPES below. Fold 9 only reports (docs/MEASUREMENTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from regen.measure import Measurements


@dataclass(frozen=True)
class MeasuredFinding:
    """A finding decided from a measurement. label: a code of `regen.labeller.LABELS` where one
    exists (STACH, SBRAD, 1AVB, PVC, PAC), else PTB-XL's code (LNGQT) or the axis name (LAD,
    RAD). probability: soft, 0.5 at the cut-off. evidence: e.g. "HR 112 bpm > 100"."""

    label: str
    probability: float
    present: bool
    evidence: str


@dataclass(frozen=True)
class Rule:
    """label is present when `value(m)` is above (direction +1) or below (-1) `cut`;
    `needs` names the quality entries that must be "ok"."""

    label: str
    needs: tuple[str, ...]
    value: Callable[[Measurements], float]
    cut: float
    direction: int
    evidence: Callable[[Measurements, bool], str]


def _n(m: Measurements, kind: str) -> float:
    return float(sum(b.kind == kind for b in m.premature_beats))


def _cmp(present: bool, direction: int) -> str:
    if direction > 0:
        return ">" if present else "<="
    return "<" if present else ">="


RULES: tuple[Rule, ...] = (
    # A sinus rate: the rate rules need a P wave on the median beat (PR measured).
    Rule("STACH", ("hr_bpm", "pr_ms"), lambda m: float(m.hr_bpm or 0), 100.0, +1,
         lambda m, p: f"HR {m.hr_bpm:.0f} bpm {_cmp(p, 1)} 100 with P waves"),
    Rule("SBRAD", ("hr_bpm", "pr_ms"), lambda m: float(m.hr_bpm or 0), 60.0, -1,
         lambda m, p: f"HR {m.hr_bpm:.0f} bpm {_cmp(p, -1)} 60 with P waves"),
    Rule("1AVB", ("pr_ms",), lambda m: float(m.pr_ms or 0), 200.0, +1,
         lambda m, p: f"PR {m.pr_ms:.0f} ms {_cmp(p, 1)} 200"),
    Rule("LNGQT", ("qtc_bazett_ms",), lambda m: float(m.qtc_bazett_ms or 0), 460.0, +1,
         lambda m, p: f"QTc (Bazett) {m.qtc_bazett_ms:.0f} ms {_cmp(p, 1)} 460"),
    Rule("LAD", ("axis_deg",), lambda m: float(m.axis_deg or 0), -30.0, -1,
         lambda m, p: f"QRS axis {m.axis_deg:+.0f}° {_cmp(p, -1)} -30°"),
    Rule("RAD", ("axis_deg",), lambda m: float(m.axis_deg or 0), 90.0, +1,
         lambda m, p: f"QRS axis {m.axis_deg:+.0f}° {_cmp(p, 1)} +90°"),
    Rule("PVC", ("premature_beats",), lambda m: _n(m, "ventricular"), 0.5, +1,
         lambda m, p: f"{_n(m, 'ventricular'):.0f} ventricular premature beat(s)"),
    Rule("PAC", ("premature_beats",), lambda m: _n(m, "supraventricular"), 0.5, +1,
         lambda m, p: f"{_n(m, 'supraventricular'):.0f} supraventricular premature beat(s)"),
)

# Logistic slope per unit of each rule's value (1/bpm, 1/ms, 1/degree, 1/beat), fitted on
# PTB-XL folds 1-8 by `fit_slopes` (bench/measure_accuracy.py --fit).
SLOPES: dict[str, float] = {
    "STACH": 0.3, "SBRAD": 0.3, "1AVB": 0.05, "LNGQT": 0.05, "LAD": 0.1, "RAD": 0.1,
    "PVC": 2.0, "PAC": 2.0,
}


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def measured_findings(m: Measurements,
                      slopes: dict[str, float] | None = None) -> list[MeasuredFinding]:
    """The rule findings of `m`, in RULES order; a rule whose measurement is not "ok" gives
    none. slopes: per-label logistic slopes (default SLOPES, fitted on folds 1-8)."""
    slopes = SLOPES if slopes is None else slopes
    out = []
    for rule in RULES:
        if any(m.quality.get(k) != "ok" for k in rule.needs):
            continue
        x = rule.value(m)
        present = (x - rule.cut) * rule.direction > 0
        p = _sigmoid(slopes[rule.label] * rule.direction * (x - rule.cut))
        out.append(MeasuredFinding(rule.label, round(p, 4), bool(present),
                                   rule.evidence(m, present)))
    return out


def fit_slopes(ms: Sequence[Measurements], truth: Sequence[frozenset[str]],
               labels: Sequence[str] | None = None) -> dict[str, float]:
    """Maximum-likelihood slope of each rule's logistic (centre fixed at the clinical cut-off)
    from measurements and their true label sets. Pass training records only (folds 1-8)."""
    out = {}
    for rule in RULES:
        if labels is not None and rule.label not in labels:
            continue
        have = [(rule.direction * (rule.value(m) - rule.cut), rule.label in t)
                for m, t in zip(ms, truth) if all(m.quality.get(k) == "ok" for k in rule.needs)]
        if not have:
            continue
        z = np.array([h[0] for h in have], dtype=np.float64)
        y = np.array([h[1] for h in have], dtype=np.float64)
        out[rule.label] = _fit_1d(z, y)
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
    """How premature the most premature beat is: max over beats of 1 - RR / median of the up
    to 8 RR around it (0 when fewer than 3 beats). A continuous score for "has extra beats"."""
    t = np.asarray(m.r_peaks_s, dtype=np.float64)
    if len(t) < 3:
        return 0.0
    rr = np.diff(t)
    best = 0.0
    for i, x in enumerate(rr):
        near = np.concatenate([rr[max(0, i - 4):i], rr[i + 1:i + 5]])
        if len(near) >= 2:
            best = max(best, 1.0 - x / float(np.median(near)))
    return best
