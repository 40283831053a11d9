"""Measured, not retrieved: rate, intervals, axis and premature beats from the signal itself.

`measure(ecg) -> Measurements`: R peaks on all usable leads (`regen.beats`), RR statistics,
PR / QRS / QT on the median beat of the normal-RR beats, QTc (Bazett, Fridericia), the frontal
QRS axis from the limb leads, and premature beats (RR prematurity; a QRS unlike the median
beat's makes it ventricular). Every value that cannot be measured is None, with the reason in
`Measurements.quality`. `measure_windows` does the same per window of a long record.

Accuracy on real data (MIT-BIH 100, PTB-XL folds 1-9): docs/MEASUREMENTS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from regen.beats import (
    BEAT_FS,
    PRE_S,
    Waves,
    bandpass,
    beat_matrix,
    delineate,
    detect_r_peaks,
    median_beat,
    repeatability,
)
from regen.ecg import ECG, standard_lead
from regen.errors import ECGReadError

FIELDS = ("hr_bpm", "rr_ms", "rr_sd_ms", "p_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms",
          "qtc_fridericia_ms", "axis_deg", "axis", "p_axis_deg", "t_axis_deg", "premature_beats")
PREMATURE = 0.15          # RR shorter than the local median by this fraction: premature
VENTRICULAR_CORR = 0.80   # QRS correlation with the median beat below this: ventricular
VENTRICULAR_WIDTH = 1.35  # ... or a QRS this many times wider
MORPH_PRE_S, MORPH_POST_S = 0.08, 0.12   # the QRS window compared with the median QRS
MIN_FS = 50.0
# Textbook limits the measurements line flags, so a reader sees an out-of-range value without
# looking it up (a flag, not a finding: findings come from the CV-fitted rules in
# regen.measured). QTc above 460 ms is long for either sex, above 500 ms markedly so; with a
# wide QRS the QT includes the slow depolarisation, so the flag says so.
PR_SHORT_MS, PR_LONG_MS = 120.0, 200.0
QRS_WIDE_MS = 120.0
QTC_LONG_MS, QTC_MARKED_MS = 460.0, 500.0
FLAT_MV = 0.02            # a lead whose robust range is below this is a flat line
INTERVALS = ("p_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms")
# Per lead, the shape of the median beat that the morphology findings read (regen.measured:
# bundle-branch blocks from where the last part of the QRS points, Q waves from its first part,
# hypertrophy from its voltage, ischaemia from the ST level and the T wave): the mean of the
# QRS's last and first QRS_PART_S, its maximum, minimum and net area, the ST level ST_AT_S after
# the QRS ends, and the T wave's largest deflection (signed) up to its end.
QRS_SHAPE_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
QRS_SHAPE = ("terminal_mv", "initial_mv", "max_mv", "min_mv", "area_mv_s", "st_mv", "t_mv")
QRS_PART_S = 0.04
ST_AT_S = (0.06, 0.08)
T_FROM_S, T_MAX_S = 0.10, 0.45


@dataclass(frozen=True)
class PrematureBeat:
    """One premature beat: time of its R peak from the record's start, and its origin."""

    time_s: float
    kind: str             # "supraventricular" | "ventricular"
    prematurity: float = 0.0   # 1 - RR / local median RR (0.25: a quarter early)


@dataclass(frozen=True)
class Measurements:
    """What the signal shows, in ms / bpm / degrees; None where not measurable (reason in
    `quality[field]`, "ok" otherwise). r_peaks_s: R-peak times in seconds from the record's
    start (from the window's start for `measure_windows`; `start_s` gives the window)."""

    hr_bpm: float | None
    rr_ms: float | None
    rr_sd_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_bazett_ms: float | None
    qtc_fridericia_ms: float | None
    axis_deg: float | None
    axis: str | None      # "normal" | "left" | "right" | "extreme"
    premature_beats: tuple[PrematureBeat, ...]
    n_beats: int
    quality: dict[str, str]
    leads_used: tuple[str, ...]
    r_peaks_s: tuple[float, ...] = ()
    start_s: float = 0.0
    duration_s: float = 0.0
    source: str = ""
    p_ms: float | None = None   # P-wave duration
    p_consistency: float | None = None    # see `p_consistency`; None: too few beats
    p_axis_deg: float | None = None       # frontal P-wave axis (`_p_axis`); None: no P wave
    t_axis_deg: float | None = None       # frontal T-wave axis (`_t_axis`); None: no T end
    pacing_spike_mv: float | None = None  # see `pacing_spike`; None: under 250 Hz, few beats
    # per lead of QRS_SHAPE_LEADS present, the QRS_SHAPE values of its median QRS (`qrs_shape`)
    qrs_shape: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Flat, JSON-ready: the measured fields, premature_beats as {time_s, kind} dicts,
        n_beats, quality, leads_used (R-peak times and the window are left out)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in FIELDS if k != "premature_beats"}
        out["premature_beats"] = [{"time_s": b.time_s, "kind": b.kind}
                                  for b in self.premature_beats]
        out.update(n_beats=self.n_beats, quality=dict(self.quality),
                   leads_used=list(self.leads_used))
        return out

    def line(self) -> str:
        """One short line, leaving out what is None, with values outside the textbook limits
        flagged: "HR 72 bpm, PR 230 ms (long), QRS 96 ms, QT/QTc 380/410 ms, axis +45°"."""
        parts = []
        wide = self.qrs_ms is not None and self.qrs_ms >= QRS_WIDE_MS
        if self.hr_bpm is not None:
            parts.append(f"HR {self.hr_bpm:.0f} bpm")
        if self.pr_ms is not None:
            flag = (" (long)" if self.pr_ms > PR_LONG_MS
                    else " (short)" if self.pr_ms < PR_SHORT_MS else "")
            parts.append(f"PR {self.pr_ms:.0f} ms{flag}")
        if self.qrs_ms is not None:
            parts.append(f"QRS {self.qrs_ms:.0f} ms{' (wide)' * wide}")
        if self.qt_ms is not None and self.qtc_bazett_ms is not None:
            qtc = self.qtc_bazett_ms
            flag = (" (low T wave: QT uncertain)" if self.quality.get("qt_ms", "ok") != "ok"
                    else "" if qtc <= QTC_LONG_MS else
                    f" (QTc {'markedly ' * (qtc > QTC_MARKED_MS)}long"
                    + (", wide QRS)" if wide else ")"))
            parts.append(f"QT/QTc {self.qt_ms:.0f}/{qtc:.0f} ms{flag}")
        elif self.qt_ms is not None:
            parts.append(f"QT {self.qt_ms:.0f} ms")
        if self.axis_deg is not None:
            parts.append(f"axis {self.axis_deg:+.0f}°")
        if self.p_axis_deg is not None and not sinus_p_axis(self.p_axis_deg):
            parts.append(f"P axis {self.p_axis_deg:+.0f}° (not sinus)")
        if self.pacing_spike_mv is not None and self.pacing_spike_mv >= PACING_SPIKE_MV:
            parts.append(f"pacing spikes ({self.pacing_spike_mv:.2f} mV)")
        n_v = sum(b.kind == "ventricular" for b in self.premature_beats)
        # an early narrow beat is a supraventricular premature beat only in a rhythm with P
        # waves; without one (atrial fibrillation) it is the rhythm's own irregularity
        n_s = (len(self.premature_beats) - n_v) * (self.quality.get("pr_ms") == "ok")
        if n_v:
            parts.append(f"{n_v} ventricular premature beat{'s' * (n_v > 1)}")
        if n_s:
            parts.append(f"{n_s} supraventricular premature beat{'s' * (n_s > 1)}")
        return ", ".join(parts) if parts else "nothing measurable"


def axis_class(deg: float) -> str:
    """Frontal QRS axis in degrees (-180, 180] -> "normal" (-30..90), "left" (-90..-30),
    "right" (90..180), "extreme" (-180..-90)."""
    if -30 <= deg <= 90:
        return "normal"
    if -90 <= deg < -30:
        return "left"
    if deg > 90:
        return "right"
    return "extreme"


def _usable(ecg: ECG) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Rows that are finite and not flat -> (signal float64, their names, standard names)."""
    x = np.asarray(ecg.signal, dtype=np.float64)
    finite = np.isfinite(x).all(axis=1)
    spread = np.zeros(len(x))
    if x.shape[1] and finite.any():
        lo, hi = np.percentile(x[finite], [1, 99], axis=1)
        spread[finite] = hi - lo
    keep = finite & (spread >= FLAT_MV)
    names = tuple(n for n, k in zip(ecg.leads, keep) if k)
    return x[keep], names, tuple(standard_lead(n) or n for n in names)


def _null(reason: str, fields: tuple[str, ...] = FIELDS) -> dict[str, str]:
    return {f: reason for f in fields}


def measure(ecg: ECG) -> Measurements:
    """One ECG -> Measurements. Needs a sampling rate of at least 50 Hz; any number of leads."""
    if ecg.fs < MIN_FS:
        raise ECGReadError(f"{ecg.source or ecg.id}: sampling rate {ecg.fs} Hz; measuring needs "
                           f"at least {MIN_FS:.0f} Hz (resample the record first)")
    sig, names, std = _usable(ecg)
    empty = Measurements(None, None, None, None, None, None, None, None, None, None, (), 0,
                         {}, names, duration_s=ecg.duration_s, source=ecg.source or ecg.id)
    if not len(names):
        return replace(empty, quality=_null("no usable lead (flat line or missing samples)"))
    peaks = detect_r_peaks(sig, ecg.fs)
    if len(peaks) < 2:
        return replace(empty, n_beats=int(len(peaks)),
                       quality=_null(f"{len(peaks)} R peak(s) found; need at least 2"),
                       r_peaks_s=tuple(float(p / ecg.fs) for p in peaks))
    quality: dict[str, str] = {}
    rr = np.diff(peaks) / ecg.fs * 1000.0                                  # ms
    rr_ms = float(rr.mean())
    rr_sd = float(rr.std(ddof=1)) if len(rr) > 1 else None
    hr = 60000.0 / rr_ms
    quality.update(hr_bpm="ok", rr_ms="ok",
                   rr_sd_ms="ok" if len(rr) > 1 else "one RR interval; its SD needs two")
    filt = bandpass(sig, ecg.fs, 0.5, 40.0)
    premature_idx = _premature(rr)
    normal = np.setdiff1d(np.arange(len(peaks)), premature_idx)
    med = median_beat(filt, peaks[normal] if len(normal) else peaks, ecg.fs)
    waves = None
    if med is None:
        quality.update(_null("no beat with a full window for the median beat",
                             (*INTERVALS, "axis_deg", "axis", "p_axis_deg", "t_axis_deg")))
    else:
        # the T wave is searched before the next beat of the beats in the median: in bigeminy
        # that is the premature one, not the median RR away
        used = normal if len(normal) else np.arange(len(peaks))
        after = rr[used[used < len(rr)]]
        waves = delineate(med, float(np.median(after if len(after) else rr)) / 1000.0)
    intervals = _intervals(waves, float(np.median(rr)), quality)
    axis_deg = _axis(med, waves, std, quality)
    p_axis = _p_axis(med, waves, std, quality)
    t_axis = _t_axis(med, waves, std, quality)
    shape = qrs_shape(med, waves, std) if med is not None and waves is not None else {}
    beats = _classify(filt, peaks, premature_idx, prematurity(rr), ecg.fs, quality)
    p_cons = p_consistency(filt, peaks, ecg.fs)
    spike = pacing_spike(sig, peaks, ecg.fs)
    return Measurements(
        hr_bpm=round(hr, 1), rr_ms=round(rr_ms, 1),
        rr_sd_ms=None if rr_sd is None else round(rr_sd, 1),
        p_ms=intervals["p_ms"], pr_ms=intervals["pr_ms"], qrs_ms=intervals["qrs_ms"],
        qt_ms=intervals["qt_ms"],
        qtc_bazett_ms=intervals["qtc_bazett_ms"],
        qtc_fridericia_ms=intervals["qtc_fridericia_ms"],
        axis_deg=None if axis_deg is None else round(axis_deg, 1),
        axis=None if axis_deg is None else axis_class(axis_deg),
        premature_beats=beats, n_beats=int(len(peaks)), quality=quality, leads_used=names,
        r_peaks_s=tuple(round(float(p / ecg.fs), 4) for p in peaks),
        duration_s=ecg.duration_s, source=ecg.source or ecg.id,
        p_consistency=None if p_cons is None else round(p_cons, 4), qrs_shape=shape,
        pacing_spike_mv=spike,
        p_axis_deg=None if p_axis is None else round(p_axis, 1),
        t_axis_deg=None if t_axis is None else round(t_axis, 1))


P_SEGMENT_S = (0.30, 0.08)   # before R: where a sinus P wave lies (PR 120-200 ms, QRS onset)
P_MIN_BEATS = 3


def p_consistency(filt: np.ndarray, peaks: np.ndarray, fs: float) -> float | None:
    """How alike the stretch before each QRS (P_SEGMENT_S before R, all leads) is from beat to
    beat: the median over beats of its Pearson correlation with the median of those stretches.
    A sinus P wave repeats (near 1); atrial fibrillation's f waves do not (near 0), even where
    the median beat shows a bump that delineation takes for a P wave. None with fewer than
    P_MIN_BEATS beats with a full stretch."""
    pre, end = int(round(P_SEGMENT_S[0] * fs)), int(round(P_SEGMENT_S[1] * fs))
    seg = beat_matrix(filt, peaks, fs, P_SEGMENT_S[0], 0.0)[:, :, : pre - end]
    if len(seg) < P_MIN_BEATS or seg.shape[2] < 3:
        return None
    return repeatability(seg)


# Pacemaker spikes: a pacing pulse lasts under 2 ms, so it survives only in a record sampled fast
# enough (PTB-XL's 100 Hz files smooth it away; its 500 Hz files keep it). Per beat, the largest
# deflection over all leads that a SPIKE_MEDIAN_S running median removes (a QRS or P wave is far
# wider and stays), from SPIKE_WINDOW_S before R to just after it; the median over beats.
SPIKE_MIN_FS = 250.0
SPIKE_MEDIAN_S = 0.01
SPIKE_WINDOW_S = (0.3, 0.02)
# Spikes this large mean a pacemaker: the geometric middle of the gap on PTB-XL folds 1-8's 500 Hz
# records (the largest of 352 unpaced ECGs 0.317 mV, the one paced ECG 1.181 mV). Fold 9, for
# reporting: its 4 paced ECGs 0.65-0.85 mV, its 77 others at most 0.328 mV.
PACING_SPIKE_MV = 0.6


def pacing_spike(sig: np.ndarray, peaks: np.ndarray, fs: float) -> float | None:
    """sig (leads, samples) mV, unfiltered -> the median over beats of each beat's narrowest
    large deflection (mV; see SPIKE_MEDIAN_S), or None below SPIKE_MIN_FS or with fewer than
    3 beats with a full window."""
    from scipy.ndimage import median_filter

    if fs < SPIKE_MIN_FS:
        return None
    width = int(SPIKE_MEDIAN_S * fs) | 1
    narrow = np.abs(sig - median_filter(sig, size=(1, width), mode="nearest")).max(axis=0)
    pre, post = int(SPIKE_WINDOW_S[0] * fs), int(SPIKE_WINDOW_S[1] * fs)
    per_beat = [narrow[p - pre:p + post].max() for p in peaks
                if p - pre >= 0 and p + post <= len(narrow)]
    return round(float(np.median(per_beat)), 3) if len(per_beat) >= 3 else None


def _intervals(waves: Waves | None, rr_med_ms: float,
               quality: dict[str, str]) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(INTERVALS)
    if waves is None:
        return out
    r = waves.reasons
    if waves.qrs_on is None or waves.qrs_off is None:
        quality.update(_null(r.get("qrs", "QRS not delineated"), INTERVALS))
        return out
    out["qrs_ms"] = round((waves.qrs_off - waves.qrs_on) * 1000, 1)
    quality["qrs_ms"] = "ok"
    if waves.p_on is None:
        quality["pr_ms"] = quality["p_ms"] = r.get("p", "P wave not found")
    else:
        out["pr_ms"] = round((waves.qrs_on - waves.p_on) * 1000, 1)
        quality["pr_ms"] = "ok"
        if waves.p_off is None:
            quality["p_ms"] = r.get("p_off", "P wave offset not found")
        else:
            out["p_ms"] = round((waves.p_off - waves.p_on) * 1000, 1)
            quality["p_ms"] = "ok"
    if waves.t_end is None:
        quality.update(_null(r.get("t", "T wave end not found"),
                             ("qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms")))
    else:
        qt = (waves.t_end - waves.qrs_on) * 1000
        rr_s = rr_med_ms / 1000.0
        out.update(qt_ms=round(qt, 1), qtc_bazett_ms=round(qt / math.sqrt(rr_s), 1),
                   qtc_fridericia_ms=round(qt / rr_s ** (1 / 3), 1))
        # a low T wave gives a value marked uncertain: shown, never turned into a finding
        how = r.get("t_low", "ok")
        quality.update(qt_ms=how, qtc_bazett_ms=how, qtc_fridericia_ms=how)
    return out


def _limb_pair(med: np.ndarray, std: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Leads I and aVF of the median beat, derived from two of I, II, III when needed."""
    have = {name: med[i] for i, name in enumerate(std) if name in ("I", "II", "III", "aVF")}
    if "I" in have and "aVF" in have:
        return have["I"], have["aVF"]
    if "I" in have and "II" in have:
        return have["I"], have["II"] - have["I"] / 2
    if "II" in have and "III" in have:
        return have["II"] - have["III"], (have["II"] + have["III"]) / 2
    if "I" in have and "III" in have:
        return have["I"], have["I"] / 2 + have["III"]
    return None


def _axis(med: np.ndarray | None, waves: Waves | None, std: tuple[str, ...],
          quality: dict[str, str]) -> float | None:
    """Frontal QRS axis from the net QRS area (onset to offset, over the PR level) in I, aVF."""
    if med is None or waves is None:
        return None
    if waves.qrs_on is None or waves.qrs_off is None:
        quality.update(axis_deg="QRS not delineated", axis="QRS not delineated")
        return None
    r0 = int(round(PRE_S * BEAT_FS))
    on, off = r0 + int(round(waves.qrs_on * BEAT_FS)), r0 + int(round(waves.qrs_off * BEAT_FS))
    return _frontal_axis(med, std, (on, off), max(0, on - 10), on, "QRS",
                         ("axis_deg", "axis"), quality)


def _frontal_axis(med: np.ndarray, std: tuple[str, ...], span: tuple[int, int], lo: int,
                  hi: int, wave: str, fields: tuple[str, ...],
                  quality: dict[str, str]) -> float | None:
    """The frontal axis (degrees) of a wave: atan2 of its net area over the median beat's
    samples `span` (inclusive) in aVF and I (derived by `_limb_pair` where missing), each
    lead over its mean level in samples lo..hi; the reason it is None goes in `fields`."""
    pair = _limb_pair(med, std)
    if pair is None:
        quality.update(dict.fromkeys(
            fields, f"needs leads I and aVF, or two of I, II, III; have {list(std)}"))
        return None
    a, b = span
    net = [float((x[a:b + 1] - x[lo:hi + 1].mean()).sum()) for x in pair]
    if b <= a or abs(net[0]) + abs(net[1]) == 0:
        quality.update(dict.fromkeys(fields, f"no net {wave} deflection in the limb leads"))
        return None
    quality.update(dict.fromkeys(fields, "ok"))
    return float(np.degrees(np.arctan2(net[1], net[0])))


# A sinus P wave is upright in I and aVF, or near it: the sinus node fires from the top of the
# right atrium, so the atria depolarise downwards and to the left. A P axis in the upper right
# quadrant (negative in both I and aVF, so upright in aVR) is not a sinus P wave: an ectopic or
# junctional atrial rhythm, the flutter wave of atrial flutter, or arms' electrodes swapped.
# The quadrant's edge is the textbook one, not fitted. On PTB-XL folds 1-8 it holds 2 of the
# 1,096 ECGs coded SR where a P wave was found, and none of 122 coded STACH, SBRAD or SARRH
# (`python bench/p_axis.py --data PTBXL --folds 1-8` prints the table).
NON_SINUS_P = (-180.0, -90.0)


def sinus_p_axis(deg: float) -> bool:
    """Whether a frontal P axis (degrees, -180..180) is one a sinus P wave can have: outside
    NON_SINUS_P, the upper right quadrant."""
    return not NON_SINUS_P[0] <= deg <= NON_SINUS_P[1]


def _p_axis(med: np.ndarray | None, waves: Waves | None, std: tuple[str, ...],
            quality: dict[str, str]) -> float | None:
    """Frontal P-wave axis from the net P area (onset to offset, over the level at its onset)
    in I and aVF; where the offset was not found, the P window ends 20 ms before the QRS."""
    if med is None or waves is None:
        return None
    if waves.p_on is None or waves.qrs_on is None:
        quality["p_axis_deg"] = waves.reasons.get("p", "P wave not found")
        return None
    r0 = int(round(PRE_S * BEAT_FS))
    end = waves.p_off if waves.p_off is not None else waves.qrs_on - 0.02
    on, off = r0 + int(round(waves.p_on * BEAT_FS)), r0 + int(round(end * BEAT_FS))
    return _frontal_axis(med, std, (on, off), on, on, "P", ("p_axis_deg",), quality)


def _t_axis(med: np.ndarray | None, waves: Waves | None, std: tuple[str, ...],
            quality: dict[str, str]) -> float | None:
    """Frontal T-wave axis from the net ST-T area (QRS offset to T end, over the PR-segment
    level, as the QRS axis) in I and aVF."""
    if med is None or waves is None:
        return None
    if waves.qrs_off is None or waves.t_end is None or waves.qrs_on is None:
        quality["t_axis_deg"] = waves.reasons.get("t", "T wave end not found")
        return None
    r0 = int(round(PRE_S * BEAT_FS))
    on = r0 + int(round(waves.qrs_on * BEAT_FS))
    a, b = r0 + int(round(waves.qrs_off * BEAT_FS)), r0 + int(round(waves.t_end * BEAT_FS))
    return _frontal_axis(med, std, (a, b), max(0, on - 10), on, "T", ("t_axis_deg",), quality)


def qrs_shape(med: np.ndarray, waves: Waves, std: tuple[str, ...]
              ) -> dict[str, tuple[float, ...]]:
    """The median beat of each lead of QRS_SHAPE_LEADS present, over the PR level: the
    QRS_SHAPE values (mV; the area in mV s). The T wave is searched from T_FROM_S after the QRS
    to its end (else T_MAX_S). Empty when the QRS edges were not found."""
    if waves.qrs_on is None or waves.qrs_off is None:
        return {}
    fs = BEAT_FS
    r0 = int(round(PRE_S * fs))
    on, off = r0 + int(round(waves.qrs_on * fs)), r0 + int(round(waves.qrs_off * fs))
    part = max(1, int(round(QRS_PART_S * fs)))
    n = med.shape[1]
    st = slice(min(n - 1, off + int(ST_AT_S[0] * fs)), min(n, off + int(ST_AT_S[1] * fs)))
    t_stop = r0 + int(round(waves.t_end * fs)) if waves.t_end is not None else off + int(
        T_MAX_S * fs)
    t_win = slice(min(n - 1, off + int(T_FROM_S * fs)), max(min(n, t_stop), min(
        n, off + int(T_FROM_S * fs)) + 1))
    out = {}
    for name in QRS_SHAPE_LEADS:
        if name not in std:
            continue
        x = med[std.index(name)] - med[std.index(name), max(0, on - 10):on + 1].mean()
        q = x[on:off + 1]
        t = x[t_win]
        out[name] = tuple(round(float(v), 4) for v in (
            q[-part:].mean(), q[:part].mean(), q.max(), q.min(), q.sum() / fs,
            x[st].mean(), t[int(np.argmax(np.abs(t)))]))
    return out


def prematurity(rr: np.ndarray) -> np.ndarray:
    """rr (n,) -> (n,): 1 - RR / the median of the up to 8 RR intervals around it (0 where
    fewer than 2 neighbours)."""
    out = np.zeros(len(rr))
    for i, x in enumerate(rr):
        near = np.concatenate([rr[max(0, i - 4):i], rr[i + 1:i + 5]])
        if len(near) >= 2:
            out[i] = 1.0 - x / float(np.median(near))
    return out


def _premature(rr: np.ndarray) -> np.ndarray:
    """Indices of beats (into the R-peak array) whose preceding RR is PREMATURE shorter than
    the median of the up to 8 RR intervals around it."""
    return np.flatnonzero(prematurity(rr) > PREMATURE).astype(np.int64) + 1


def _classify(filt: np.ndarray, peaks: np.ndarray, premature_idx: np.ndarray,
              early: np.ndarray, fs: float, quality: dict[str, str]
              ) -> tuple[PrematureBeat, ...]:
    """Premature beats as ventricular when their QRS (R -80..+120 ms, all leads) correlates
    below VENTRICULAR_CORR with the median beat's or is VENTRICULAR_WIDTH times wider."""
    if len(peaks) < 3:
        quality["premature_beats"] = f"{len(peaks)} beats; need at least 3 for prematurity"
        return ()
    quality["premature_beats"] = "ok"
    pre, post = MORPH_PRE_S, MORPH_POST_S
    qrs = beat_matrix(filt, peaks, fs, pre, post)
    inside = (peaks - int(round(pre * fs)) >= 0) & (peaks + int(round(post * fs))
                                                    <= filt.shape[1])
    row = np.cumsum(inside) - 1
    template = np.median(qrs, axis=0) if len(qrs) else None
    out = []
    for i in premature_idx:
        kind = "supraventricular"
        if template is not None and inside[i]:
            b = qrs[row[i]]
            if (_corr(b, template) < VENTRICULAR_CORR
                    or _width(b, fs) > VENTRICULAR_WIDTH * _width(template, fs)):
                kind = "ventricular"
        out.append(PrematureBeat(round(float(peaks[i] / fs), 3), kind,
                                 round(float(early[i - 1]), 3)))
    return tuple(out)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _width(beat: np.ndarray, fs: float) -> float:
    """Seconds the beat's spatial velocity spends above 30% of its peak."""
    sv = np.sqrt((np.diff(beat, axis=-1) ** 2).sum(axis=0))
    return float((sv > 0.3 * sv.max()).sum() / fs) if sv.max() > 0 else 0.0


def measure_windows(ecg: ECG, window_s: float = 10.0,
                    step_s: float = 10.0) -> list[Measurements]:
    """Measurements of each window of a long record; `start_s` gives each window's start.

    The last window is kept when it holds at least half a window of signal.
    """
    if window_s <= 0 or step_s <= 0:
        raise ECGReadError(f"window_s={window_s}, step_s={step_s}; both must be positive")
    n, w, s = ecg.n_samples, int(round(window_s * ecg.fs)), int(round(step_s * ecg.fs))
    out = []
    for start in range(0, max(1, n - w // 2), s):
        part = ECG(ecg.signal[:, start:start + w], ecg.fs, ecg.leads, ecg.id, ecg.source,
                   dict(ecg.meta))
        out.append(replace(measure(part), start_s=round(start / ecg.fs, 4)))
        if start + w >= n:
            break
    return out


__all__ = ["FIELDS", "NON_SINUS_P", "Measurements", "PrematureBeat", "axis_class", "measure",
           "measure_windows", "sinus_p_axis"]
