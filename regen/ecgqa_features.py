"""ECG-QA's numeric features as its labeller read them: neurokit2's wavelet delineation of lead II.

ECG-QA's "numeric feature" answers (which of rr interval, p duration, pr interval, qrs duration,
qt interval and qt corrected are abnormal) come from an automatic delineator, not from a
cardiologist, and regen's own intervals (`regen.measure`, checked against clinical references)
agree with them on barely more than half of the items' features. Reading the signal the way
neurokit2 does agrees far better: lead II resampled to 500 Hz, `ecg_clean`, `ecg_peaks` and
`ecg_delineate(method="dwt")`, each interval the median over the beats of

* rr interval: successive R peaks;
* p duration: P onset to P offset;
* pr interval: P onset to QRS onset (neurokit2's R onset);
* qrs duration: Q peak to S peak;
* qt interval: Q peak to T offset; qt corrected: that over the square root of the RR (Bazett).

These definitions were chosen by leave-one-fold-out CV on the ECG-QA items whose ECGs lie in
PTB-XL folds 1-8, against the alternatives (R onset to R offset for the QRS, R onset to T offset
for the QT, lead I, neurokit2's other delineators, 100 Hz, the mean over beats):
`bench/numeric_ranges.py` prints the comparison; docs/MEASUREMENTS.md has the figures.

They are a convention for answering ECG-QA's questions, not clinical measurements: a QRS from the
Q peak to the S peak is shorter than a clinical QRS duration. Reports and the clinical numeric
answers use `regen.measure`.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

from regen.ecg import ECG, standard_lead
from regen.errors import ConfigError

FS = 500            # neurokit2 reads ECG-QA's 500-Hz signals; others are resampled to it
MAX_S = 60.0        # longer recordings are read over their first minute
MIN_S = 4.0         # the wavelet delineation needs a few beats
MIN_BEATS = 3
FLAT_MV = 0.02
# beats that do not repeat are not beats: below this median correlation of each beat (R -250 ms
# to +450 ms) with their median, the lead is read as noise and nothing is measured
MIN_BEAT_CORR = 0.7
BEAT_S = (0.25, 0.45)
SOURCE = "neurokit2"
# feature -> (start point, end point) of one beat, in neurokit2's delineation names
SPANS: dict[str, tuple[str, str]] = {"p duration": ("P_Onsets", "P_Offsets"),
                                     "pr interval": ("P_Onsets", "R_Onsets"),
                                     "qrs duration": ("Q_Peaks", "S_Peaks"),
                                     "qt interval": ("Q_Peaks", "T_Offsets")}
FEATURE_NAMES = ("rr interval", "p duration", "pr interval", "qrs duration", "qt interval",
                 "qt corrected")


def _neurokit():  # type: ignore[no-untyped-def]
    try:
        import neurokit2
    except ImportError as exc:
        raise ConfigError(
            "numeric_ranges='ecgqa' reads ECG-QA's interval features with neurokit2, which is "
            "not installed: pip install 'regen[eval]' (or neurokit2), or set "
            "numeric_ranges='clinical'") from exc
    return neurokit2


def lead_signal(ecg: ECG, lead: str = "II") -> tuple[np.ndarray | None, str]:
    """One lead in mV (lead II derived as I + III where only those are recorded), or None and
    why."""
    std = [standard_lead(name) for name in ecg.leads]
    if lead in std:
        return np.asarray(ecg.signal[std.index(lead)], dtype=float), f"lead {lead}"
    if lead == "II" and "I" in std and "III" in std:
        x = ecg.signal[std.index("I")] + ecg.signal[std.index("III")]
        return np.asarray(x, dtype=float), "lead II derived as I + III"
    return None, (f"ECG-QA's features are read from lead {lead}, which this ECG lacks (leads "
                  f"{', '.join(ecg.leads)})" + (" and cannot derive (needs I and III)"
                                                 if lead == "II" else ""))


def beat_points(ecg: ECG, lead: str = "II", fs: int = FS
                ) -> tuple[dict[str, np.ndarray] | None, str]:
    """neurokit2's delineation of one lead at `fs`: {"R" or a wave point name: sample index per
    beat, NaN where not found} (all of one length), and a note; None and why on a signal it
    cannot read (absent, flat, noise, too short). Never raises on a bad signal."""
    x, note = lead_signal(ecg, lead)
    if x is None:
        return None, note
    x = x[: int(MAX_S * ecg.fs)]
    if len(x) < MIN_S * ecg.fs:
        return None, f"{len(x) / ecg.fs:.1f} s of signal; the delineation needs {MIN_S:g} s"
    if not np.all(np.isfinite(x)):
        return None, f"lead {lead} has missing samples"
    if np.percentile(x, 99) - np.percentile(x, 1) < FLAT_MV:
        return None, f"lead {lead} is flat"
    nk = _neurokit()
    ratio = Fraction(fs / ecg.fs).limit_denominator(1000)
    if ratio != 1:
        from scipy.signal import resample_poly
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            clean = nk.ecg_clean(x, sampling_rate=fs)
            _, info = nk.ecg_peaks(clean, sampling_rate=fs)
            r = np.asarray(info["ECG_R_Peaks"], dtype=int)
            if len(r) < MIN_BEATS:
                return None, f"{len(r)} beats found in lead {lead}; needs {MIN_BEATS}"
            corr = beat_consistency(clean, r, fs)
            if corr is None or corr < MIN_BEAT_CORR:
                return None, (f"lead {lead}'s beats do not repeat (median correlation "
                              f"{0.0 if corr is None else corr:.2f} with their median beat, "
                              f"under {MIN_BEAT_CORR}): noise, not measurable")
            _, waves = nk.ecg_delineate(clean, r, sampling_rate=fs, method="dwt")
    except Exception as exc:  # noqa: BLE001 - neurokit2 raises many kinds on bad signals
        return None, f"neurokit2 could not delineate lead {lead} ({type(exc).__name__}: {exc})"[
            :200]
    n = len(r)
    points = {"R": r.astype(float)}
    for key, v in waves.items():
        if key.startswith("ECG_"):
            a = np.asarray([np.nan if p is None else p for p in v], dtype=float)
            points[key[4:]] = np.concatenate([a, np.full(max(0, n - len(a)), np.nan)])[:n]
    return points, note + f", neurokit2 {nk.__version__} wavelet delineation at {fs} Hz"


def beat_consistency(x: np.ndarray, r: np.ndarray, fs: int) -> float | None:
    """The median over beats of each beat's Pearson correlation with the median beat (None
    with fewer than MIN_BEATS whole beats)."""
    pre, post = int(BEAT_S[0] * fs), int(BEAT_S[1] * fs)
    whole = r[(r >= pre) & (r + post <= len(x))]
    if len(whole) < MIN_BEATS:
        return None
    beats = np.stack([x[p - pre:p + post] for p in whole])
    beats = beats - beats.mean(axis=1, keepdims=True)
    template = np.median(beats, axis=0)
    norms = np.linalg.norm(beats, axis=1) * np.linalg.norm(template)
    return float(np.median(beats @ template / np.where(norms > 0, norms, np.inf)))


def features_from_points(points: dict[str, np.ndarray], fs: int = FS,
                         spans: dict[str, tuple[str, str]] = SPANS,
                         aggregate: str = "median") -> dict[str, float | None]:
    """{feature: ms or None}: each span's per-beat duration aggregated over the beats."""
    if aggregate not in ("median", "mean"):
        raise ValueError(f"aggregate {aggregate!r}; expected 'median' or 'mean'")

    def summary(v: np.ndarray) -> float | None:
        v = v[np.isfinite(v) & (v > 0)]
        if not len(v):
            return None
        return float(np.median(v) if aggregate == "median" else np.mean(v))

    nan = np.full(len(points["R"]), np.nan)
    out: dict[str, float | None] = dict.fromkeys(FEATURE_NAMES)
    out["rr interval"] = summary(np.diff(points["R"]) * 1000.0 / fs)
    for feature, (start, end) in spans.items():
        out[feature] = summary((points.get(end, nan) - points.get(start, nan)) * 1000.0 / fs)
    qt, rr = out["qt interval"], out["rr interval"]
    out["qt corrected"] = None if qt is None or not rr else qt / float(np.sqrt(rr / 1000.0))
    return out


def ecgqa_features(ecg: ECG) -> tuple[dict[str, float | None], str]:
    """{feature: ms or None} in ECG-QA's names, and a note: the lead used, or why nothing was
    measured. Never raises on a bad signal (flat, noise, too short): the values are None."""
    points, note = beat_points(ecg)
    if points is None:
        return dict.fromkeys(FEATURE_NAMES), note
    return features_from_points(points), note
