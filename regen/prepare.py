"""Preparing an ECG for the encoder: one rate, one band, the standard 12 leads, fixed windows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as sps

from regen.ecg import ECG, STANDARD_LEADS, standard_lead
from regen.errors import ECGReadError

# Peak-to-peak below this (mV) is an unplugged or saturated-flat lead: masked, not trusted.
FLAT_MV = 1e-3
# Samples per lead after resampling: 24 h at 100 Hz (about 0.8 GB as float64 for 12 leads).
MAX_RESAMPLED = 24 * 3600 * 100


@dataclass(frozen=True, eq=False)
class Prepared:
    """An ECG as the encoder sees it.

    windows: (W, 12, T) float32 mV at `fs`, leads in STANDARD_LEADS order, zeros where masked.
    mask: (12,) bool, True where the lead was recorded (and is not flat).
    starts: (W,) int, each window's first sample at `fs` in the resampled recording.
    source_*: the recording as read (rate, lead names, samples), kept for provenance.
    """

    windows: np.ndarray
    mask: np.ndarray
    starts: np.ndarray
    fs: float
    id: str
    source_fs: float = 0.0
    source_leads: tuple[str, ...] = ()
    source_samples: int = 0

    def with_id(self, id: str) -> Prepared:
        return replace(self, id=id)

    def with_leads(self, keep: np.ndarray) -> Prepared:
        """A copy seeing only the leads where `keep` (12,) bool is True (others masked)."""
        mask = self.mask & keep
        return replace(self, windows=self.windows * mask[None, :, None], mask=mask)


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """(leads, n) at fs_in -> (leads, round(n * fs_out / fs_in)) at fs_out, with anti-aliasing."""
    if abs(fs_in - fs_out) < 1e-9:
        return x.astype(np.float32, copy=False)
    n_out = int(round(x.shape[-1] * fs_out / fs_in))
    if n_out > MAX_RESAMPLED:  # checked before resample_poly allocates the output
        raise ECGReadError(f"{x.shape[-1]} samples at {fs_in:g} Hz would become {n_out} at "
                           f"{fs_out:g} Hz; expected at most {MAX_RESAMPLED} (24 h at 100 Hz): "
                           f"cut the recording or check its sampling rate")
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = sps.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator, axis=-1)
    if y.shape[-1] < n_out:   # the rational approximation of an odd rate can fall one short
        y = np.concatenate([y, np.repeat(y[..., -1:], n_out - y.shape[-1], axis=-1)], axis=-1)
    return y[..., :n_out].astype(np.float32)


@lru_cache(maxsize=32)
def _bandpass_sos(fs: float, low: float, high: float) -> np.ndarray:
    high = min(high, 0.45 * fs)
    return sps.butter(3, [low, high], btype="bandpass", fs=fs, output="sos")


def bandpass(x: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0) -> np.ndarray:
    """Zero-phase 3rd-order Butterworth band-pass along the last axis: removes baseline wander
    (> 20 dB below 0.5 Hz) and attenuates above `high` (about 14 dB at 50 Hz for 40 Hz)."""
    sos = _bandpass_sos(float(fs), low, high)
    padlen = min(x.shape[-1] - 1, 3 * (2 * len(sos) + 1))
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen).astype(np.float32)


def to_standard_leads(ecg: ECG) -> tuple[np.ndarray, np.ndarray]:
    """(leads, n) in the source's order -> ((12, n) float32, (12,) bool mask).
    When two source leads map to one standard lead, the first wins."""
    out = np.zeros((len(STANDARD_LEADS), ecg.n_samples), dtype=np.float32)
    mask = np.zeros(len(STANDARD_LEADS), dtype=bool)
    for row, name in enumerate(ecg.leads):
        std = standard_lead(name)
        if std is None:
            continue
        i = STANDARD_LEADS.index(std)
        if not mask[i]:
            out[i], mask[i] = ecg.signal[row], True
    if not mask.any():
        raise ECGReadError(f"{ecg.source or ecg.id}: leads {list(ecg.leads)} include none of the "
                           f"12 standard leads; rename them or pick another record")
    return out, mask


def windows_of(x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(12, n) -> ((W, 12, length), starts): back-to-back windows; a short tail joins only if
    it covers at least half a window, and a recording shorter than one window is zero-padded."""
    n = x.shape[-1]
    if n <= length:
        padded = np.zeros((x.shape[0], length), dtype=np.float32)
        padded[:, :n] = x
        return padded[None], np.zeros(1, dtype=np.int64)
    starts = list(range(0, n - length + 1, length))
    tail = n - (starts[-1] + length)
    if tail >= length // 2:
        starts.append(n - length)  # overlaps the previous window rather than padding with zeros
    idx = np.asarray(starts, dtype=np.int64)
    return np.stack([x[:, s:s + length] for s in idx]), idx


def prepare(ecg: ECG, *, fs: float = 100.0, window_s: float = 10.0,
            band: tuple[float, float] = (0.5, 40.0)) -> Prepared:
    """Resample to `fs`, band-pass, map to the standard 12 leads with a mask, cut into windows."""
    x, mask = to_standard_leads(ecg)
    x = resample(x, ecg.fs, fs)
    if x.shape[-1] < 8:
        raise ECGReadError(f"{ecg.source or ecg.id}: only {ecg.n_samples} samples "
                           f"({ecg.duration_s:.3f} s); expected at least a second of signal")
    x = bandpass(x, fs, *band)
    flat = np.ptp(x, axis=1) < FLAT_MV
    mask = mask & ~flat
    if not mask.any():
        raise ECGReadError(f"{ecg.source or ecg.id}: every standard lead is flat after filtering; "
                           f"expected a recorded ECG")
    x[~mask] = 0.0
    wins, starts = windows_of(x, int(round(fs * window_s)))
    return Prepared(wins, mask, starts, float(fs), ecg.id, ecg.fs, ecg.leads, ecg.n_samples)
