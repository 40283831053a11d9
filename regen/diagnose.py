"""From neighbours and embedding to stated findings: the per-build findings model and composer,
what the input's leads allow, consistent decisions, and the report text with its provenance.

`Diagnoser.load_or_fit(build_dir, ...)` reads `findings.json`, `findings_labels.npz` and the
composer beside an index build, fitting them (leave-one-fold-out CV in the corpus, see
`regen.findings`) when they are missing; the rebuild job fits them right after a build.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from regen.compose import Composed, Composer
from regen.findings import (
    FINDINGS,
    NAMES,
    NO_HELDOUT,
    FindingsModel,
    HeldOut,
    Targets,
    fit,
    logit,
    report_text,
    view_labels,
)
from regen.labeller import LABELS, SCP_SUPERCLASS
from regen.types import Finding, InputNotes, Neighbour

LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")
RHYTHMS = ("SR", "AFIB", "STACH", "SBRAD", "SARRH")
# Complete and incomplete right bundle branch block exclude each other, and no folds 1-8 report
# states a left and a right one (0 of 1,499 for each pair), so a report states one at most.
BUNDLE_BRANCH = ("CRBBB", "IRBBB", "CLBBB")
# A premature atrial contraction needs an organised atrial rhythm to be premature against: no
# folds 1-8 report states one beside atrial fibrillation (0 of 75), so it is not stated there.
NOT_IN_AF = ("PAC",)
_ABNORMAL = ("MI", "STTC", "HYP")
# Conduction findings no folds 1-8 report states beside "normal ECG" (CRBBB 0 of 48, CLBBB 0 of
# 23, DIG 0 of 24, PACE 0 of 4); others are normal variants there (IRBBB 20 of 61, LAFB 8 of 78).
NEVER_NORMAL = ("CRBBB", "CLBBB", "DIG", "PACE")
# Findings defined by a measurement: when the signal gives it (quality ok), it decides.
# Chosen on PTB-XL folds 1-8 by `python bench/measured_vs_retrieved.py --data PTBXL` (out-of-
# fold F1 against the labeller's reading of each report, retrieved / measured where measurable
# else retrieved / measured only; rerun with the QRS edges of regen.beats.QRS_FRACTION 0.08):
# STACH 0.860 / 0.891 / 0.898, SBRAD 0.527 / 0.765 / 0.734, RAD 0.000 / 0.727 / 0.727 -> the
# measurement decides where it can (MEASURED_DECIDES); 1AVB 0.238 / 0.456 / 0.646 (0.147 /
# 0.273 / 0.304 before the labeller read a prolonged PR as 1AVB too), LPR 0.165 / 0.352 / 0.544,
# PAC 0.332 / 0.448 / 0.587 -> only the measurement states them (MEASURED_ONLY);
# PVC 0.738 / 0.726 and LAD 0.356 / 0.259 stay retrieved (the measurement is shown as a note
# when it disagrees).
# A pacemaker is decided by its spikes wherever the record is fast enough to keep them (250 Hz
# and over; regen.measure.PACING_SPIKE_MV): retrieval only guesses it from the wide paced QRS.
MEASURED_DECIDES = frozenset({"STACH", "SBRAD", "RAD", "PACE"})
# On a paced ECG (PACE measured present) the report states the pacing and premature beats only,
# as ECG machines and PTB-XL's cardiologists do: the paced QRS looks like a bundle branch block,
# with Q waves and ST-T changes of its own, and no rhythm beneath is read from it. 9 of the 10
# paced ECGs in PTB-XL folds 1-9 are reported as the pacing alone ("pacemaker ekg").
PACED_KEEPS = frozenset({"PACE", "PVC", "PAC"})
# STACH and SBRAD say "sinus": the measured rate decides them only where the similar ECGs find
# a sinus rhythm plausible (the largest of SR, STACH, SBRAD and SARRH's retrieved probability
# over its threshold, capped at 1, at least SINUS_GATE); else (atrial flutter with 2:1
# conduction, fast AF) the retrieved decision stands and the rate is only measured. Chosen on
# folds 1-8 by `python bench/measured_vs_retrieved.py --data PTBXL` (the "sinus is plausible"
# rows): out-of-fold F1 STACH / SBRAD at g = 0 (no gate) 0.891 / 0.765; 0.2 0.905 / 0.765;
# 0.4 0.905 / 0.785; 0.6 0.896 / 0.769; 0.8 0.883 / 0.789 (a few ECGs each way).
SINUS_RATES = frozenset({"STACH", "SBRAD"})
SINUS_GATE = 0.4
# A measured P axis that no sinus P wave has (regen.measure.NON_SINUS_P: the rhythm is ectopic
# atrial, junctional or atrial flutter) rules these out: each is measured absent (probability
# 0), whatever the similar ECGs say (the measurements give an absent "SR" for it).
SINUS = ("SR", "STACH", "SBRAD", "SARRH")
# Statements read from the P wave's shape (atrial enlargement / overload: P mitrale, P
# pulmonale). No sentence states one where the measurements found no P wave (the PR rules then
# give nothing), the P wave is not sinus, or atrial fibrillation is stated: an atrium in
# fibrillation or flutter has no P wave to be wide or tall.
P_WAVE_CODES = ("LAO/LAE", "RAO/RAE")

MEASURED_ONLY = frozenset({"1AVB", "LPR", "PAC"})
# A retrieved LAD is not stated when the measurement is clearly against it (measured
# probability below VETO_BELOW): out-of-fold F1 on folds 1-8 LAD 0.356 -> 0.394 (levels 0.01 /
# 0.05 / 0.2 tried: 0.372 / 0.394 / 0.323; with the QRS edges before QRS_FRACTION 0.08, 0.370 /
# 0.379 / 0.391 chose 0.2).
MEASURED_VETO = frozenset({"LAD"})
VETO_BELOW = 0.05
# PVC: the retrieved and measured decisions averaged on the decision scale (retrieved p over
# its threshold, measured probability over 0.5; stated at >= 1), the measured one weighing
# MEASURED_MIX. Out-of-fold F1 on folds 1-8 (bench/measured_vs_retrieved.py, the PVC row):
# retrieved 0.738, either 0.714, both 0.758 (the veto this replaces), weights 0.25 / 0.5 /
# 0.75: 0.762 / 0.775 / 0.726.
# The morphology findings the same way, the measured one the model on the median beat's shape
# (`regen.measured.morphology_findings`, its probability over its cut). Out-of-fold F1 on folds
# 1-8 (each model refitted without each ECG's fold; bench/measured_vs_retrieved.py, the last
# rows), retrieved / weights 0.25 / 0.5 / 0.75 / 1:
#   CRBBB 0.624 / 0.680 / 0.680 / 0.739 / 0.739     CLBBB 0.769 / 0.760 / 0.745 / 0.792 / 0.800
#   LAFB  0.562 / 0.597 / 0.663 / 0.684 / 0.682     IRBBB 0.284 / 0.273 / 0.341 / 0.364 / 0.421
#   IMI   0.405 / 0.482 / 0.533 / 0.517 / 0.532     ASMI  0.438 / 0.439 / 0.435 / 0.439 / 0.460
#   LVH   0.604 / 0.626 / 0.614 / 0.575 / 0.579     STD_  0.563 / 0.573 / 0.584 / 0.586 / 0.579
#   INVT  0.377 / 0.396 / 0.410 / 0.398 / 0.402
# each takes its best weight (the smaller on a tie). Where no weight beat retrieval by more
# than 0.01 the retrieved decision stands and the label is not in the shipped model: QWAVE
# 0.348 / best 0.329, VCLVH 0.514 / 0.523, LOWT 0.514 / 0.494. The retrieved OOF figures are the
# optimistic ones (the encoder saw those folds), so this leans towards retrieval.
MEASURED_MIX = {"PVC": 0.5, "CRBBB": 0.75, "CLBBB": 1.0, "LAFB": 0.75, "IRBBB": 1.0,
                "IMI": 0.5, "ASMI": 1.0, "LVH": 0.25, "STD_": 0.75, "INVT": 0.5}
# AFIB: the retrieved probability blended with the measured AF score (RR irregularity, P-wave
# presence and consistency; `regen.measured.af_finding`), never where the rhythm is regular.
# Out-of-fold F1 on folds 1-8 (python bench/measured_vs_retrieved.py --data PTBXL): retrieved
# 0.718; blend 0.25 / 0.5 / 0.75 / 1: 0.821 / 0.819 / 0.770 / 0.709 (0.821 / 0.803 / 0.770 /
# 0.703 with the QRS edges before QRS_FRACTION 0.08).
MEASURED_BLEND = {"AFIB": 0.25}
# Sinus rhythm or sinus arrhythmia: where the decided rhythm is one of the two and the measured
# sinus-arrhythmia score exists (`regen.measured.sarrh_finding`: a P wave that could be sinus,
# enough beats), the score decides which. Out-of-fold F1 on folds 1-8 (python
# bench/measured_vs_retrieved.py --data PTBXL, the SARRH rows), SARRH / SR / sum: retrieved
# 0.105 / 0.932 / 1.037; the score decides at cut 0.1 0.427 / 0.921 / 1.348, 0.15 0.460 /
# 0.929 / 1.389, 0.2 0.465 / 0.936 / 1.401, 0.25 0.416 / 0.937 / 1.352, 0.3 0.303 / 0.937 /
# 1.240; only turning SR into SARRH, at 0.2: 0.462 / 0.936 / 1.397. The cut is
# regen.measured.SARRH_CUT.
SARRH_DECIDES = ("SR", "SARRH")
# Where no rhythm clears its threshold (the similar ECGs split between rhythms, or the measured
# AF score voted atrial fibrillation down) but the median beat has a P wave with a sinus axis,
# the rhythm is sinus: named SR, or STACH / SBRAD by the measured rate (then SARRH_DECIDES).
# Out-of-fold on folds 1-8 (python bench/measured_vs_retrieved.py --data PTBXL, the "no rhythm
# named" row: 25 ECGs named none, 14 of them with a sinus P wave), F1 SR / STACH / SBRAD / sum
# left unnamed 0.932 / 0.872 / 0.529 / 2.333, named 0.935 / 0.909 / 0.522 / 2.366.
ABSTAIN_RULE = ("abstains when the confidence (the calibrated expected agreement of the stated "
                "findings with a cardiologist's, as label F1) is below {tau:.2f}, the level that "
                "answers {cov:.0%} of corpus ECGs in leave-one-fold-out CV; when the input's "
                "amplitude is implausible; or when no finding can be assessed from its leads")


def limb_complete(leads: set[str]) -> bool:
    """All six limb leads are present or derivable (any two of I, II, III; or I with aVF)."""
    return len(leads & {"I", "II", "III"}) >= 2 or {"I", "aVF"} <= leads


def needs(label: str, leads: set[str]) -> str | None:
    """Why `label` cannot be assessed from `leads` (None: it can)."""
    limb = limb_complete(leads)
    chest = leads & set(CHEST)
    lateral = bool(chest & {"V5", "V6"})
    if label in ("NORM",) and not (limb and len(chest) == 6):
        return "a normal ECG needs all 12 leads"
    if label in ("LVH", "VCLVH", "HYP") and not ("V1" in chest and lateral):
        return "voltage criteria need V1 and V5 or V6"
    if label in ("CRBBB", "IRBBB", "CLBBB") and not ("V1" in chest and lateral):
        return "bundle branch block morphology needs V1 and V5 or V6"
    if label == "ASMI" and len(chest & {"V1", "V2", "V3", "V4"}) < 2:
        return "anteroseptal leads V1-V4 are missing"
    if label in ("IMI", "LAFB", "LAD", "RAD") and not limb:
        return "needs the limb leads (two of I, II, III)"
    if label == "MI" and not (limb or len(chest & {"V1", "V2", "V3", "V4"}) >= 2):
        return "no inferior or anterior lead group is complete"
    if label in ("STTC", "STD_", "INVT", "LOWT", "DIG") and not (limb or len(leads) >= 3):
        return "ST-T changes are read across lead groups: needs the limb leads or 3 leads"
    return None


def margin(p: np.ndarray, thr: np.ndarray) -> np.ndarray:
    return logit(p) - logit(np.clip(thr, 1e-4, 1 - 1e-4))


def resolve(p: np.ndarray, thr: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(F,) probabilities, thresholds, assessable -> (F,) decisions made consistent, and notes.
    One rhythm among SR/AFIB/STACH/SBRAD/SARRH and one bundle-branch statement among
    CRBBB/IRBBB/CLBBB (the largest margin over its threshold); no NOT_IN_AF finding beside
    atrial fibrillation; NORM
    against MI/STTC/HYP findings and NEVER_NORMAL ones: the side with the larger margin stays;
    a code brings its superclass."""
    idx = {c: i for i, c in enumerate(FINDINGS)}
    present = (p >= thr) & ok
    m = margin(p, thr)
    notes: list[str] = []
    for group in (RHYTHMS, BUNDLE_BRANCH):
        on = [idx[c] for c in group if present[idx[c]]]
        if len(on) > 1:
            keep = max(on, key=lambda i: m[i])
            for i in on:
                if i != keep:
                    present[i] = False
                    notes.append(f"{FINDINGS[i]} not stated: {FINDINGS[keep]} is more likely")
    if present[idx["AFIB"]]:
        for c in NOT_IN_AF:
            if present[idx[c]]:
                present[idx[c]] = False
                notes.append(f"{c} not stated: atrial fibrillation has no atrial rhythm for a beat "
                             "to be premature against")
    abnormal = [i for i, c in enumerate(FINDINGS)
                if present[i] and (c in _ABNORMAL or c in NEVER_NORMAL
                                   or SCP_SUPERCLASS.get(c) in _ABNORMAL)]
    n = idx["NORM"]
    if present[n] and abnormal:
        worst = max(abnormal, key=lambda i: m[i])
        if m[n] >= m[worst]:
            for i in abnormal:
                present[i] = False
            notes.append("abnormal findings below the normal statement's weight not stated")
        else:
            present[n] = False
            notes.append(f"'normal ECG' not stated: {FINDINGS[worst]} found")
    for i, c in enumerate(FINDINGS):
        sup = SCP_SUPERCLASS.get(c)
        if present[i] and sup and sup != c and sup in idx and ok[idx[sup]]:
            present[idx[sup]] = True
    return present, notes


class Measured(Protocol):
    """A finding from the signal's measurements (regen.measure.MeasuredFinding's shape)."""

    label: str
    probability: float
    present: bool
    evidence: str
    value: float | None
    cut: float


def not_p_wave(measured: Sequence[Measured] | None) -> bool:
    """Whether the signal was measured and showed no P wave (no PR-interval finding)."""
    return measured is not None and not any(mf.label in ("1AVB", "LPR") for mf in measured)


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    composed: Composed | None
    confidence: float
    abstained: bool
    notes: tuple[str, ...]


class Diagnoser:
    """The fitted findings model of one build, the corpus targets it votes with, and the
    composer."""

    def __init__(self, model: FindingsModel, targets: Targets, composer: Composer):
        self.model = model
        self.targets = targets
        self.composer = composer
        self.rule = ABSTAIN_RULE.format(tau=model.abstain_below, cov=model.coverage)

    @property
    def k(self) -> int:
        return self.model.k

    # -- one query ---------------------------------------------------------------------------

    def probabilities(self, z: np.ndarray, rows: np.ndarray, sims: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z (M, dim), the voting neighbours' corpus rows and cosines (M, k), closest first
        (`Targets.exclude`) -> (fused, from neighbours, from the probe), each (M, F)."""
        k = min(self.model.k, rows.shape[1])
        pk, pp = self.model.sources(z, sims[:, :k], self.targets.tensor(rows[:, :k]))
        return self.model.fuse(pk, pp), pk, pp

    def diagnose(self, p: np.ndarray, pk: np.ndarray, pp: np.ndarray, rows: np.ndarray,
                 shown: Sequence[Neighbour], notes: InputNotes | None,
                 measured: Sequence[Measured] | None = None) -> Diagnosis:
        """One query's (F,) probabilities -> decided findings, text and confidence. `rows`: the
        voting neighbours' corpus rows (their keys are the evidence); `shown`: the neighbours
        a report shows, which vote on the wording. `measured`: findings
        the signal's measurements decide (rate, PR, axis, premature beats); for the labels in
        MEASURED_DECIDES and MEASURED_ONLY they replace the retrieved probability, and a
        disagreement is said; None: nothing was measured (retrieval decides everything)."""
        from regen.measured import af_probability

        leads = set(notes.leads_used) if notes else set(LIMB + CHEST)
        why = [needs(c, leads) for c in FINDINGS]
        ok = np.array([w is None for w in why])
        idx = {c: i for i, c in enumerate(FINDINGS)}
        p = p.copy()
        thr = self.model.threshold
        by_measure: dict[str, Measured] = {}
        vetoed: dict[str, Measured] = {}
        blended: dict[str, Measured] = {}
        extra: list[str] = []
        sinus = max(min(1.0, float(p[idx[c]] / thr[idx[c]])) for c in SINUS)
        # the P wave is not a sinus one: every sinus rhythm, at any rate, is measured absent
        ruled = next((mf for mf in measured or () if mf.label == "SR" and not mf.present), None)
        if ruled is not None:
            said = [c for c in SINUS if p[idx[c]] >= thr[idx[c]]]
            for c in SINUS:
                by_measure[c] = ruled            # its evidence (the P axis) is theirs
                p[idx[c]] = 0.0
                ok[idx[c]], why[idx[c]] = True, None
            extra.append(f"{ruled.evidence}; a sinus rhythm is not stated"
                         + (f" (the similar ECGs suggest {', '.join(said)})" if said else ""))
        sarrh = None
        for mf in measured or ():
            i = idx.get(mf.label)
            if i is None:
                continue
            retrieved = bool(p[i] >= thr[i])
            if ruled is not None and mf.label in SINUS:
                continue
            if mf.label == "SARRH":          # decides between SR and SARRH after `resolve`
                sarrh = mf
                continue
            if mf.label in SINUS_RATES and sinus < SINUS_GATE:
                if retrieved != mf.present:
                    extra.append(f"{mf.label}: measured {mf.evidence}, but the similar ECGs "
                                 "do not suggest a sinus rhythm; the retrieved decision "
                                 f"stands (p={p[i]:.2f})")
                continue
            if mf.label in MEASURED_BLEND or mf.label in MEASURED_MIX:
                if mf.label in MEASURED_BLEND:
                    p[i] = af_probability(float(p[i]), float(thr[i]), mf.probability,
                                          math.inf if mf.value is None else mf.value,
                                          MEASURED_BLEND[mf.label])
                    how = f"the rhythm's measurements ({mf.evidence})"
                else:
                    b = MEASURED_MIX[mf.label]
                    p[i] = min(1.0, thr[i] * ((1 - b) * p[i] / thr[i]
                                              + b * mf.probability / mf.cut))
                    how = f"the measurement ({mf.evidence})"
                blended[mf.label] = mf
                if retrieved != bool(p[i] >= thr[i]):
                    extra.append(f"{mf.label}: the similar ECGs "
                                 f"{'suggest' if retrieved else 'do not suggest'} it, but with "
                                 f"{how} it is {'not ' if retrieved else ''}stated "
                                 f"(p={p[i]:.2f})")
                continue
            if mf.label not in MEASURED_DECIDES | MEASURED_ONLY:
                if mf.label in MEASURED_VETO and retrieved and mf.probability < VETO_BELOW:
                    vetoed[mf.label] = mf
                    extra.append(f"{mf.label}: the similar ECGs suggest it (p={p[i]:.2f}), "
                                 f"but the measurement is against it ({mf.evidence}): not "
                                 "stated")
                elif retrieved != mf.present:
                    extra.append(f"{mf.label}: measured {mf.evidence}, but the similar ECGs "
                                 f"{'suggest' if retrieved else 'do not suggest'} it "
                                 f"(p={p[i]:.2f}); the retrieved decision stands")
                continue
            by_measure[mf.label] = mf
            if retrieved != mf.present:
                extra.append(f"{mf.label}: the similar ECGs suggest it "
                             f"{'is present' if retrieved else 'is absent'} (p={p[i]:.2f}), "
                             f"but the measurement decides: {mf.evidence}")
            # on the decision's scale: a measured "present" clears the threshold, "absent" not
            p[i] = mf.probability
            ok[i] = True
            why[i] = None
        if measured is not None:
            for c in MEASURED_ONLY - set(by_measure):
                i = idx[c]
                if ok[i]:
                    ok[i] = False
                    why[i] = "stated only when measured, and not measurable here"
        for c in vetoed:
            ok[idx[c]] = False
            why[idx[c]] = f"the measurement is against it: {vetoed[c].evidence}"
        present, notes_r = resolve(p, np.where([c in by_measure for c in FINDINGS], 0.5, thr),
                                   ok)
        extra += notes_r
        if (measured is not None and ruled is None and not not_p_wave(measured)
                and not any(present[idx[c]] for c in RHYTHMS)):
            # no rhythm over its threshold, but a P wave with a sinus axis: a sinus rhythm,
            # named by the measured rate (SINUS_FALLBACK)
            rate = next((mf for mf in measured if mf.label in SINUS_RATES and mf.present), None)
            pr = next(mf for mf in measured if mf.label in ("1AVB", "LPR"))
            named = rate.label if rate is not None else "SR"
            present[idx[named]] = ok[idx[named]] = True
            why[idx[named]] = (f"stated from the measurements: no rhythm was likely enough from "
                               f"the similar ECGs, and a P wave precedes the QRS "
                               f"(PR {pr.value:.0f} ms) with a sinus axis")
            if rate is not None:
                by_measure[named] = rate
                p[idx[named]] = rate.probability
            extra.append(f"{named}: {why[idx[named]]}")
        paced = by_measure.get("PACE")
        if paced is not None and paced.present:
            dropped = [c for i, c in enumerate(FINDINGS) if present[i] and c not in PACED_KEEPS]
            for c in FINDINGS:
                if c not in PACED_KEEPS:      # not assessable: the confidence leaves them out
                    present[idx[c]] = ok[idx[c]] = False
                    why[idx[c]] = ("not read on a paced ECG (the paced QRS and its ST-T are "
                                   "the pacing's)")
            if dropped:
                extra.append(f"pacing spikes measured ({paced.evidence}): {', '.join(dropped)} "
                             "not stated, since a paced QRS and its ST-T are not read for "
                             "other diagnoses")
        # the confidence judges the findings with the rhythm as the similar ECGs name it: the
        # measured choice between the two names words one sinus rhythm, it adds no finding
        judged = p.copy(), present.copy(), ok.copy()
        if sarrh is not None and any(present[idx[c]] for c in SARRH_DECIDES):
            named = next(c for c in SARRH_DECIDES if present[idx[c]])
            now = "SARRH" if sarrh.present else "SR"
            if now != named:
                extra.append(f"{named}: the similar ECGs suggest it (p={p[idx[named]]:.2f}), but "
                             f"the measured rhythm decides {now}: {sarrh.evidence}")
                why[idx[named]] = f"the measured rhythm is named {NAMES.get(now, now)}"
            for c in SARRH_DECIDES:
                present[idx[c]] = c == now
            by_measure["SARRH"] = sarrh
            p[idx["SARRH"]] = sarrh.probability
            ok[idx["SARRH"]], why[idx["SARRH"]] = True, None
        cut = np.array([by_measure[c].cut if c in by_measure else thr[i]
                        for i, c in enumerate(FINDINGS)])
        t = self.targets
        voters = rows[:self.model.k]
        voters = voters[voters >= 0]
        holds = t.y[voters] & t.known[voters]                                  # (k, F)
        supporters = {c: tuple(str(x) for x in t.keys[voters[holds[:, i]][:5]])
                      for i, c in enumerate(FINDINGS) if holds[:, i].any()}
        decided = [c for c in FINDINGS if present[idx[c]]]
        mg = margin(p, cut)
        composed = self.composer.compose(
            decided, [(n.key, n.report, n.score) for n in shown],
            None if len(leads) == 12 else leads,
            margins={c: float(mg[i]) if ok[i] else -1e9 for i, c in enumerate(FINDINGS)},
            forbid=({mf.label for mf in measured or () if not mf.present}
                    | (set(SINUS) if ruled is not None else set())
                    | (set(P_WAVE_CODES) if ruled is not None or not_p_wave(measured)
                       or present[idx["AFIB"]] else set()))
            - set(decided),
            unsaid=("sinus",) if ruled is not None else ())
        if paced is not None and paced.present and composed is not None \
                and "PACE" not in composed.stated:
            # a paced ECG's text that does not say so is wrong whatever else it says
            extra.append("no corpus sentence states the pacing: no report is suggested")
            composed = None
        stated = composed.stated if composed else frozenset()
        sent_labels = composed.sentence_labels if composed else ()
        findings = []
        for c in FINDINGS:
            i = idx[c]
            if not (present[i] or p[i] >= 0.1 or c in stated
                    or (ruled is not None and c in SINUS)):
                continue
            got = by_measure.get(c)
            ev = (got.evidence,) if got else supporters.get(c, ())
            src = tuple(s.key for s, labs in zip(composed.sentences, sent_labels)
                        if c in labs) if composed else ()
            note = why[i] or ""
            if present[i] and composed is not None and c in LABELS and c not in stated:
                note = "decided, but no corpus sentence states it together with the rest"
            if c in blended:
                ev = (*ev, blended[c].evidence)
                how = "the measured AF score" if c == "AFIB" else "the measurement"
                note = "; ".join(x for x in (note, f"blended with {how}") if x)
            findings.append(Finding(
                name=NAMES.get(c, c), label=c, probability=float(p[i]),
                present=bool(present[i]), source="measured" if got else "retrieved", evidence=ev,
                threshold=float(cut[i]), assessable=bool(ok[i]),
                note=note, sentence_sources=src,
                parts={"neighbours": round(float(pk[i]), 4), "probe": round(float(pp[i]), 4)}))
        findings.sort(key=lambda f: (not f.present, -f.probability))
        conf = float(self.model.confidence(*(a[None] for a in judged))[0])
        warn = list(notes.warnings) if notes else []
        abstained = conf < self.model.abstain_below or bool(warn and notes and notes.implausible) \
            or not ok.any() or composed is None
        return Diagnosis(tuple(findings), composed, conf, abstained, tuple(extra))

    # -- storage -----------------------------------------------------------------------------

    @classmethod
    def load_or_fit(cls, build_dir: Path, records: Callable[[], tuple[np.ndarray, np.ndarray,
                                                                     list]],
                    language: str, log: Callable[[str], None] | None = None,
                    heldout: HeldOut = NO_HELDOUT) -> Diagnoser:
        """Load the build's findings files, or fit and (if the folder is writable) save them.
        `records()` gives (ids, vectors, views) of the build's corpus in index order;
        `heldout`: the encoder's correction for unseen ECGs (a model saved with another one
        is fitted again)."""
        files = _files(build_dir, language)
        if all(f.exists() for f in files.values()):
            try:
                model = FindingsModel.load(files["model"])
                comp = Composer.from_json(json.loads(files["composer"].read_text()))
                if model.heldout == heldout:
                    return cls(model, Targets.load(files["labels"]), comp)
            except (KeyError, ValueError, OSError):
                pass        # written by another version: fit again
        log = log or (lambda m: print(m, file=sys.stderr))
        ids, vectors, views = records()
        labels = view_labels(ids, views, language)
        targets = Targets.of_views(labels.ids, labels.y, labels.known, views)
        model = fit(labels, vectors, log=log, heldout=heldout)
        comp = Composer.build([v.key for v in views], [report_text(v, language) for v in views],
                              language)
        try:
            model.save(files["model"])
            targets.save(files["labels"])
            tmpc = files["composer"].with_name(f".composer.{os.getpid()}.tmp")
            tmpc.write_text(json.dumps(comp.to_json()))
            os.replace(tmpc, files["composer"])
        except OSError as exc:          # a read-only build still answers, fitting each open
            log(f"findings model not saved in {build_dir}: {exc}")
        return cls(model, targets, comp)


def _files(build_dir: Path, language: str) -> dict[str, Path]:
    return {"model": build_dir / f"findings-{language}.json",
            "labels": build_dir / f"findings-labels-{language}.npz",
            "composer": build_dir / f"composer-{language}.json"}



__all__ = ["Diagnoser", "Diagnosis", "LABELS", "needs", "resolve"]
