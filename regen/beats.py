"""Beats from the signal: R peaks on any number of leads, the median beat, and its delineation.

The measurement stage (`regen.measure`) builds on three steps here:

* `detect_r_peaks`: band-pass 5-20 Hz, the leads' squared slopes summed (a spatial velocity,
  so the leads with the largest QRS weigh most), a 120 ms moving integral, peaks above a
  quarter of the local QRS level (the 2-s running maximum, median-smoothed over 8 s), a search
  back at half that level in gaps over 1.6 median RR (and at the record's ends), each peak
  moved to the largest absolute band-passed deflection within 80 ms, and detections that
  split one RR with a QRS unlike the others dropped (noise bursts).
* `median_beat`: the per-lead median of the beats with a normal RR (premature ones left out),
  band-passed 0.5-40 Hz, resampled to 500 Hz so intervals are not quantised to 10 ms on
  100 Hz records.
* `delineate`: QRS onset and offset where the spatial velocity of the median beat falls below
  a fraction of its QRS peak; T end by the tangent at the steepest T downslope on the leads with
  the largest T waves; P onset where the P wave's RMS bump over the PR-segment level rises,
  P offset where it falls back (so P duration is offset - onset).

Arrays are (leads, samples) float in mV unless a docstring says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d
from scipy.signal import butter, find_peaks, resample_poly, sosfiltfilt

BEAT_FS = 500.0           # Hz of the median beat
PRE_S, POST_S = 0.45, 0.70  # median-beat window around R
# QRS edges: where the spatial velocity falls below this fraction of its peak. Chosen on folds
# 1-8 by `python bench/measure_accuracy.py --data PTBXL --sweep-qrs` (F1 of QRS >= 120 ms
# against complete bundle branch block: 0.12 0.597, 0.10 0.612, 0.08 0.667, 0.07 0.655, 0.06
# 0.652, 0.05 0.629); 0.12 cut the late R' of right bundle branch block (median QRS of CRBBB
# ECGs 94 ms, at 0.08 128 ms; normal ECGs 74 -> 82 ms).
QRS_FRACTION = 0.08
P_FRACTION = 0.25         # P onset: RMS bump below this fraction of the P amplitude
MIN_P_MV = 0.02           # a median-beat P wave smaller than this is "no P wave found"
MIN_T_MV = 0.05
LOW_T_MV = 0.15           # below this the T end is uncertain: QT given, but not "ok"
T_FALLEN, T_BACK = 0.2, 0.1   # T end: the downslope searched until the T falls to 20 % of its
T_TAIL_S = 0.12               # peak; the tangent's end capped where it is back to 10 % (or 120 ms)
T_SETTLE, T_SETTLE_MARGIN_S = 0.2, 0.02   # ... and 20 ms after the leads stop moving


def bandpass(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis; `hi` is capped below Nyquist."""
    sos = _sos(float(fs), float(lo), float(min(hi, 0.45 * fs)))
    if x.shape[-1] <= 3 * (2 * len(sos) + 1):
        return x - x.mean(axis=-1, keepdims=True)
    return sosfiltfilt(sos, x, axis=-1)


@lru_cache(maxsize=64)
def _sos(fs: float, lo: float, hi: float) -> np.ndarray:
    """The 2nd-order band-pass's sections (designed once per rate and band: the design cost
    as much as filtering a 10-s ECG)."""
    return butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """signal (leads, samples) mV -> R-peak sample indices (n,) int64, ascending.

    Leads are used together; any sampling rate of 50 Hz or more; one lead works.
    """
    bp = bandpass(signal, fs, 5.0, 20.0)
    slope = np.diff(bp, axis=-1, prepend=bp[:, :1]) * fs           # mV/s
    energy = (slope ** 2).sum(axis=0)                               # (samples,)
    env = uniform_filter1d(energy, max(1, int(0.12 * fs)))
    if not np.any(env > 0):
        return np.zeros(0, dtype=np.int64)
    level = maximum_filter1d(env, max(1, int(2.0 * fs)))
    level = median_filter(level, size=max(1, int(8.0 * fs)) | 1, mode="nearest")
    cand, props = find_peaks(env, distance=max(1, int(0.2 * fs)))
    heights = env[cand]
    keep = cand[heights > 0.25 * level[cand]]
    keep = _search_back(keep, cand, env, level, fs)
    keep = _drop_t_waves(keep, env, fs)
    keep = _refine(keep, np.abs(bp).sum(axis=0), fs)
    for _ in range(4):       # a noise burst may leave several detections in one RR
        fewer = _drop_intruders(keep, bp, fs)
        if len(fewer) == len(keep):
            break
        keep = fewer
    return keep


def _drop_intruders(peaks: np.ndarray, bp: np.ndarray, fs: float) -> np.ndarray:
    """Drop a detection that splits one normal RR in two (its two RR intervals sum to under
    1.2 local median RR) when its QRS is unlike the others (correlation < 0.8 with the median
    QRS): a noise burst, not a beat. A premature beat is followed by a longer RR and stays."""
    if len(peaks) < 5:
        return peaks
    w = int(round(0.06 * fs))
    inside = (peaks - w >= 0) & (peaks + w < bp.shape[1])
    idx = peaks[inside][:, None] + np.arange(-w, w + 1)[None, :]
    segs = np.transpose(bp[:, idx], (1, 0, 2)).reshape(int(inside.sum()), -1)   # (n, leads*L)
    template = np.median(segs, axis=0)
    corr = np.ones(len(peaks))
    corr[inside] = [_pearson(s, template) for s in segs]
    keep = np.ones(len(peaks), dtype=bool)
    rr = np.diff(peaks)
    for i in range(1, len(peaks) - 1):
        near = np.concatenate([rr[max(0, i - 5):i - 1], rr[i + 1:i + 5]])
        if not len(near) or not keep[i - 1]:
            continue
        if peaks[i + 1] - peaks[i - 1] < 1.2 * np.median(near) and corr[i] < 0.8:
            keep[i] = False
    return peaks[keep]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _search_back(keep: np.ndarray, cand: np.ndarray, env: np.ndarray, level: np.ndarray,
                 fs: float) -> np.ndarray:
    """Add the largest candidate above half the threshold in each gap over 1.6 median RR, and
    in a stretch over one median RR before the first or after the last peak."""
    if len(keep) < 3:
        return keep
    rr = np.median(np.diff(keep))
    gaps = [(a, b) for a, b in zip(keep[:-1], keep[1:]) if b - a > 1.6 * rr]
    if keep[0] > rr:
        gaps.insert(0, (-int(0.2 * fs), keep[0]))        # not within 0.1 s of an end
    if len(env) - keep[-1] > rr:
        gaps.append((keep[-1], len(env) + int(0.2 * fs)))
    added = []
    for a, b in gaps:
        inner = cand[(cand > a + 0.3 * fs) & (cand < b - 0.3 * fs)]
        inner = inner[env[inner] > 0.125 * level[inner]]
        if len(inner):
            added.append(inner[np.argmax(env[inner])])
    return np.sort(np.concatenate([keep, np.asarray(added, dtype=keep.dtype)]))


def _drop_t_waves(keep: np.ndarray, env: np.ndarray, fs: float) -> np.ndarray:
    """A peak within 360 ms of the previous kept one and under half its height is a T wave."""
    out: list[int] = []
    for p in keep:
        if out and p - out[-1] < 0.36 * fs and env[p] < 0.5 * env[out[-1]]:
            continue
        out.append(int(p))
    return np.asarray(out, dtype=np.int64)


def _refine(peaks: np.ndarray, magnitude: np.ndarray, fs: float) -> np.ndarray:
    """Move each peak to the largest absolute band-passed deflection within 80 ms."""
    w = max(1, int(0.08 * fs))
    out = []
    for p in peaks:
        lo, hi = max(0, p - w), min(len(magnitude), p + w + 1)
        out.append(lo + int(np.argmax(magnitude[lo:hi])))
    return np.unique(np.asarray(out, dtype=np.int64))


def beat_matrix(x: np.ndarray, peaks: np.ndarray, fs: float, pre_s: float,
                post_s: float) -> np.ndarray:
    """x (leads, samples), peaks (n,) -> (n_kept, leads, pre+post) windows fully inside x."""
    pre, post = int(round(pre_s * fs)), int(round(post_s * fs))
    ok = peaks[(peaks - pre >= 0) & (peaks + post <= x.shape[1])]
    if not len(ok):
        return np.zeros((0, x.shape[0], pre + post))
    idx = ok[:, None] + np.arange(-pre, post)[None, :]               # (n, L)
    return np.transpose(x[:, idx], (1, 0, 2))


def repeatability(seg: np.ndarray) -> float:
    """(beats, leads, samples) windows -> the median over beats of each window's Pearson
    correlation with the median window: near 1 where every beat is alike, near 0 for noise."""
    seg = seg - seg.mean(axis=2, keepdims=True)
    med = np.median(seg, axis=0).ravel()
    flat = seg.reshape(len(seg), -1)
    num = flat @ med
    den = np.linalg.norm(flat, axis=1) * np.linalg.norm(med)
    r = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
    return float(np.median(r))


def median_beat(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray | None:
    """x (leads, samples) band-passed 0.5-40 Hz, peaks of normal beats -> (leads, T) at 500 Hz
    with R at index PRE_S * 500, or None when no beat has a full window."""
    beats = beat_matrix(x, peaks, fs, PRE_S, POST_S)
    if not len(beats):
        return None
    med = np.median(beats, axis=0)
    if fs != BEAT_FS:
        up, down = int(BEAT_FS), int(round(fs))
        if abs(fs - round(fs)) > 1e-6:
            up, down = int(BEAT_FS * 10), int(round(fs * 10))
        med = resample_poly(med, up, down, axis=-1)
    return med


@dataclass(frozen=True)
class Waves:
    """Fiducial points of a median beat in seconds relative to R (None: not found), and why
    each one is missing."""

    p_on: float | None
    qrs_on: float | None
    qrs_off: float | None
    t_end: float | None
    reasons: dict[str, str]
    p_off: float | None = None


def delineate(med: np.ndarray, rr_s: float) -> Waves:
    """med (leads, T) mV at 500 Hz with R at PRE_S; rr_s the median RR -> Waves."""
    fs = BEAT_FS
    r0 = int(round(PRE_S * fs))
    reasons: dict[str, str] = {}
    sv = _spatial_velocity(med, 0.01)
    lo_q, hi_q = r0 - int(0.06 * fs), r0 + int(0.06 * fs)
    peak_i = lo_q + int(np.argmax(sv[lo_q:hi_q]))
    floor = float(np.percentile(sv, 10))
    thr = floor + QRS_FRACTION * (sv[peak_i] - floor)
    hold = int(0.012 * fs)
    qrs_on = _cross(sv, peak_i, -1, thr, hold, r0 - int(0.16 * fs))
    qrs_off = _cross(sv, peak_i, +1, thr, hold, r0 + int(0.22 * fs))
    if qrs_on is None or qrs_off is None:
        reasons["qrs"] = "QRS edges not found on the median beat"
        return Waves(None, None, None, None, reasons)
    base = med[:, max(0, qrs_on - int(0.02 * fs)):qrs_on + 1].mean(axis=-1, keepdims=True)
    y = med - base
    t_end = _t_end(y, qrs_off, r0, rr_s, reasons)
    p_on, p_off = _p_wave(y, qrs_on, r0, rr_s, t_end, reasons)
    def rel(i: int | None) -> float | None:
        return None if i is None else (i - r0) / fs

    return Waves(rel(p_on), rel(qrs_on), rel(qrs_off), rel(t_end), reasons, rel(p_off))


def _spatial_velocity(x: np.ndarray, smooth_s: float) -> np.ndarray:
    """(leads, T) at BEAT_FS -> (T,) root sum of the leads' squared slopes in mV/s, smoothed
    over `smooth_s` (blind to each lead's baseline offset)."""
    sv = np.sqrt((np.diff(x, axis=-1, prepend=x[:, :1]) ** 2).sum(axis=0)) * BEAT_FS
    return uniform_filter1d(sv, int(smooth_s * BEAT_FS))


def _cross(sv: np.ndarray, start: int, step: int, thr: float, hold: int,
           limit: int) -> int | None:
    """First index from `start` in direction `step` where sv stays below thr for `hold`."""
    i = start
    while (i > limit) if step < 0 else (i < limit):
        seg = sv[i - hold + 1:i + 1] if step < 0 else sv[i:i + hold]
        if len(seg) and np.all(seg < thr):
            return i
        i += step
    return None


def _t_end(y: np.ndarray, qrs_off: int, r0: int, rr_s: float,
           reasons: dict[str, str]) -> int | None:
    fs = BEAT_FS
    stop = min(y.shape[1] - 1, r0 + int(min(POST_S - 0.02, 0.7 * rr_s) * fs))
    lo = qrs_off + int(0.06 * fs)
    hi = stop - int(0.04 * fs)
    if hi - lo < int(0.05 * fs):
        reasons["t"] = "RR too short to separate the T wave from the next beat"
        return None
    seg = y[:, lo:hi]
    # one T wave for all leads: the peak of the leads' RMS, then each lead's extremum within
    # 40 ms of it (a lead's own largest value may be noise or a U wave far from its T)
    centre = int(np.argmax(np.sqrt((seg ** 2).mean(axis=0))))
    half = int(0.04 * fs)
    a, b = max(0, centre - half), min(seg.shape[1], centre + half + 1)
    peak_rel = a + np.argmax(np.abs(seg[:, a:b]), axis=1)
    amp = seg[np.arange(len(seg)), peak_rel]
    big = np.abs(amp).max()
    if big < MIN_T_MV:
        reasons["t"] = f"no T wave above {MIN_T_MV} mV on the median beat"
        return None
    if big < LOW_T_MV:
        reasons["t_low"] = (f"uncertain: the T wave is below {LOW_T_MV} mV on the median beat, "
                            "so its end is hard to place")
    ends = []
    for lead in np.flatnonzero(np.abs(amp) >= 0.5 * big):
        tp = lo + int(peak_rel[lead])
        tail = y[lead, tp:stop] * np.sign(amp[lead])                  # T made positive
        if len(tail) < 4:
            continue
        d = np.gradient(tail) * fs
        # the steepest downslope of this T wave's own descent (before it has fallen to a
        # fifth of its peak), not a later slope of noise, a U wave or the next P wave
        fallen = np.flatnonzero(tail < T_FALLEN * tail[0])
        descent = int(fallen[0]) + 1 if len(fallen) else len(tail)
        m = int(np.argmin(d[:max(descent, 2)]))
        if d[m] >= 0:
            continue
        cross = m - tail[m] / d[m] * fs                               # tangent meets zero
        # a shallow tangent (a low, flat T) runs far: never past where the wave is back
        # within a tenth of its peak, nor T_TAIL_S beyond the steepest point
        back = np.flatnonzero(tail[m:] < T_BACK * tail[0])
        limit = m + (int(back[0]) if len(back) else int(T_TAIL_S * fs))
        ends.append(tp + min(max(cross, m), limit, len(tail) - 1))
    if not ends:
        reasons["t"] = "T wave downslope not found"
        return None
    end = float(np.median(ends))
    settled = _t_settled(y, lo + centre, stop)
    return int(round(end if settled is None else min(end, settled + T_SETTLE_MARGIN_S * fs)))


def _t_settled(y: np.ndarray, t_peak: int, stop: int) -> int | None:
    """Where the leads stop moving after the T peak: the spatial velocity (root sum of squared
    slopes, 20-ms smoothed) falls below a fifth of its T-downslope peak over the window's floor
    and stays there 20 ms. Blind to baseline offsets, so it bounds a tangent that a low T wave
    on a shifted baseline carries too far."""
    fs = BEAT_FS
    sv = _spatial_velocity(y, 0.02)
    seg = sv[t_peak:stop]
    if len(seg) < int(0.06 * fs):
        return None
    floor = float(np.percentile(seg, 10))
    vmax_i = int(np.argmax(seg[:int(0.15 * fs)]))
    thr = floor + T_SETTLE * (float(seg[vmax_i]) - floor)
    return _cross(sv, t_peak + vmax_i, +1, thr, int(0.02 * fs), stop)


def _p_wave(y: np.ndarray, qrs_on: int, r0: int, rr_s: float, t_end: int | None,
            reasons: dict[str, str]) -> tuple[int | None, int | None]:
    """(P onset, P offset) in samples of the median beat; either None when not separable
    (the reason in `reasons["p"]`, or `reasons["p_off"]` for the offset alone)."""
    fs = BEAT_FS
    hi = qrs_on - int(0.02 * fs)
    lo = max(0, qrs_on - int(0.38 * fs))
    if t_end is not None:       # the previous beat's T end bounds the search
        lo = max(lo, t_end - int(rr_s * fs) + int(0.02 * fs))
    if hi - lo < int(0.06 * fs):
        reasons["p"] = "no room for a P wave before the QRS (fast rate)"
        return None, None
    seg = y[:, lo:hi]
    # each lead about its own median in the window (the TP level), so lead offsets between the
    # TP and PR segments do not raise the floor under the P wave
    e = np.sqrt(((seg - np.median(seg, axis=1, keepdims=True)) ** 2).mean(axis=0))
    # The P wave is the most prominent bump of the RMS curve; the window may start on the
    # previous T wave's tail, which is higher but no bump.
    peaks, props = find_peaks(e, prominence=MIN_P_MV)
    if not len(peaks):
        reasons["p"] = f"no P wave above {MIN_P_MV} mV on the median beat"
        return None, None
    best = int(np.argmax(props["prominences"]))
    pk, left = int(peaks[best]), int(props["left_bases"][best])
    right = int(props["right_bases"][best])
    floor = float(e[left:pk + 1].min())
    amp = float(e[pk]) - floor
    below = np.flatnonzero(e[left:pk] - floor < P_FRACTION * amp)
    if not len(below):
        reasons["p"] = "P wave onset not separable from the preceding T wave"
        return None, None
    onset = lo + left + int(below[-1])
    # the offset mirrors the onset: where the bump falls back under the same fraction of its
    # height over the level after it (the PR segment, or the QRS onset's edge of the window)
    floor_r = float(e[pk:right + 1].min())
    after = np.flatnonzero(e[pk:right + 1] - floor_r < P_FRACTION * (float(e[pk]) - floor_r))
    if not len(after):
        reasons["p_off"] = "P wave offset runs into the QRS"
        return onset, None
    return onset, lo + pk + int(after[0])
