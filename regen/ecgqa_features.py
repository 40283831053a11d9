"""ECG-QA's numeric features as its labeller read them: neurokit2's wavelet delineation of lead II.

ECG-QA's "numeric feature" answers (which of rr interval, p duration, pr interval, qrs duration,
qt interval and qt corrected are abnormal) come from an automatic delineator, not from a
cardiologist, and regen's own intervals (`regen.measure`, checked against clinical references)
agree with them on barely more than half of the items' features. Reading the signal the way
neurokit2 0.2.3 (ECG-QA's time) does agrees far better: lead II resampled to 500 Hz,
`ecg_clean`, `ecg_peaks` and `ecg_delineate(method="dwt")`, each interval the median over the
beats of

* rr interval: successive R peaks;
* p duration: P onset to P offset;
* pr interval: P onset to QRS onset (neurokit2's R onset);
* qrs duration: Q peak to S peak;
* qt interval: Q peak to T offset; qt corrected: that over the square root of the RR (Bazett).

neurokit2 0.2.3 no longer runs with today's numpy and pandas, and later versions changed three
of its choices; `delineate_as_ecgqa` runs the installed 0.3 with 0.2.3's choices restored (the
QRS onset searched up to the R peak, not the Q peak; T and P peak candidates scored on the raw
amplitude, not a normalised one; Q and S peaks searched in a beat window of -0.35 to +0.5 RR,
0.1 s wider each side from 80 bpm). On the 763 ECGs of the ECG-QA items here its points equal
0.2.3's (run apart in an old environment) at every P, QRS-onset and T point.

These definitions were chosen by leave-one-fold-out CV on the ECG-QA items whose ECGs lie in
PTB-XL folds 1-8, against the alternatives (0.3's own choices, R onset to R offset for the QRS,
R onset to T offset for the QT, lead I, 100 Hz, the mean over beats):
`bench/numeric_ranges.py --alternatives` prints the comparison; docs/MEASUREMENTS.md has the
figures.

They are a convention for answering ECG-QA's questions, not clinical measurements: a QRS from the
Q peak to the S peak is shorter than a clinical QRS duration. Reports and the clinical numeric
answers use `regen.measure`.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from regen.beats import beat_matrix, repeatability
from regen.ecg import ECG, standard_lead
from regen.errors import ConfigError
from regen.measure import FLAT_MV
from regen.prepare import resample

FS = 500            # neurokit2 reads ECG-QA's 500-Hz signals; others are resampled to it
MAX_S = 60.0        # longer recordings are read over their first minute
MIN_S = 4.0         # the wavelet delineation needs a few beats
MIN_BEATS = 3
# beats that do not repeat are not beats: below this median correlation of each beat (R -250 ms
# to +450 ms) with their median, the lead is read as noise and nothing is measured
MIN_BEAT_CORR = 0.7      # bench/ecgqa_noise_gate.py: white noise <= 0.64, folds 1-8 ECGs >= 0.79
BEAT_S = (0.25, 0.45)
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


_PATCH = threading.Lock()
_PRIVATE = ("_dwt_normalize_window", "_dwt_delineate_qrs_bounds", "_ecg_delineator_peak_Q",
            "_ecg_delineator_peak_S")


def _raw_window(ecg_local: Any, weight: float = 1.0) -> np.ndarray:
    """0.2.3's T/P peak score: the window's raw amplitude (0.3 normalises it)."""
    return np.asarray(ecg_local, dtype=float)


def delineate_as_ecgqa(nk: Any, clean: np.ndarray, r: np.ndarray, fs: int
                       ) -> dict[str, np.ndarray]:
    """neurokit2's dwt delineation {wave point name: sample per beat} as 0.2.3 ran it (see the
    module's docstring); raises ConfigError when the installed neurokit2 lacks what this
    restores."""
    mod: Any = importlib.import_module("neurokit2.ecg.ecg_delineate")
    missing = [name for name in _PRIVATE if not hasattr(mod, name)]
    if missing:
        raise ConfigError(f"neurokit2 {nk.__version__} lacks {', '.join(missing)}, which ECG-QA's "
                          "reading restores 0.2.3's choices through; install neurokit2 0.3.x")
    bounds: Callable[..., Any] = mod._dwt_delineate_qrs_bounds

    def up_to_r(rpeaks: Any, dwtmatr: Any, ppeaks: Any, tpeaks: Any, qpeaks: Any,
                sampling_rate: int = 250) -> Any:
        return bounds(rpeaks, dwtmatr, ppeaks, tpeaks, rpeaks, sampling_rate=sampling_rate)

    # the two choices live inside ecg_delineate: swapped in for this call only, under a lock
    # (regen calls neurokit2's delineation nowhere else)
    with _PATCH:
        saved = mod._dwt_normalize_window, mod._dwt_delineate_qrs_bounds
        mod._dwt_normalize_window, mod._dwt_delineate_qrs_bounds = _raw_window, up_to_r
        try:
            _, waves = nk.ecg_delineate(clean, r, sampling_rate=fs, method="dwt")
        finally:
            mod._dwt_normalize_window, mod._dwt_delineate_qrs_bounds = saved
    out = {k[4:]: _per_beat(v, len(r)) for k, v in waves.items() if k.startswith("ECG_")}
    out["Q_Peaks"], out["S_Peaks"] = _q_s_peaks(nk, mod, clean, r, fs)
    return out


def _q_s_peaks(nk: Any, mod: Any, clean: np.ndarray, r: np.ndarray, fs: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Q and S peaks found by neurokit2's own rule in 0.2.3's beat window."""
    hr = float(np.mean(nk.signal_rate(r, sampling_rate=fs, desired_length=len(clean))))
    start, end = -0.35 * 60.0 / hr, 0.5 * 60.0 / hr
    if hr >= 80:
        start, end = start - 0.1, end + 0.1
    beats = nk.epochs_create(clean, r, sampling_rate=fs, epochs_start=start, epochs_end=end)
    q = np.full(len(r), np.nan)
    s = np.full(len(r), np.nan)
    for i, peak in enumerate(r):
        beat = beats[str(i + 1)]
        at_r = beat.index.get_loc(np.min(beat.index.values[beat.index.values > 0]))
        q[i] = mod._ecg_delineator_peak_Q(peak, beat, at_r)[0]
        s[i] = mod._ecg_delineator_peak_S(peak, beat)[0]
    return q, s


def _per_beat(v: Any, n: int) -> np.ndarray:
    a = np.asarray([np.nan if p is None else p for p in v], dtype=float)
    return np.concatenate([a, np.full(max(0, n - len(a)), np.nan)])[:n]


def beat_points(ecg: ECG, lead: str = "II", fs: int = FS, as_ecgqa: bool = True
                ) -> tuple[dict[str, np.ndarray] | None, str]:
    """neurokit2's delineation of one lead at `fs`: {"R" or a wave point name: sample index per
    beat, NaN where not found} (all of one length), and a note; None and why on a signal it
    cannot read (absent, flat, noise, too short). as_ecgqa: with 0.2.3's choices
    (`delineate_as_ecgqa`), else the installed version's own. Never raises on a bad signal."""
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
    x = resample(x[None, :], ecg.fs, fs)[0].astype(float)
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
            if as_ecgqa:
                points = delineate_as_ecgqa(nk, clean, r, fs)
            else:
                _, waves = nk.ecg_delineate(clean, r, sampling_rate=fs, method="dwt")
                points = {k[4:]: _per_beat(v, len(r)) for k, v in waves.items()
                          if k.startswith("ECG_")}
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - neurokit2 raises many kinds on bad signals
        return None, f"neurokit2 could not delineate lead {lead} ({type(exc).__name__}: {exc})"[
            :200]
    points["R"] = r.astype(float)
    how = " as 0.2.3 ran it" if as_ecgqa else ""
    return points, note + f", neurokit2 {nk.__version__} wavelet delineation{how} at {fs} Hz"


def beat_consistency(x: np.ndarray, r: np.ndarray, fs: int) -> float | None:
    """How alike the beats are (`regen.beats.repeatability` of R -250 to +450 ms); None with
    fewer than MIN_BEATS whole beats."""
    seg = beat_matrix(x[None, :], r, fs, *BEAT_S)
    return repeatability(seg) if len(seg) >= MIN_BEATS else None


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
