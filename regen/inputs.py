"""What regen did with an input ECG, said in every output: leads used and missing, rates,
duration and windows, and warnings, among them an amplitude check for wrong units."""

from __future__ import annotations

import numpy as np

from regen.ecg import ECG, STANDARD_LEADS
from regen.prepare import Prepared
from regen.types import InputNotes

# A QRS complex is at most a few mV; a median lead spanning this much is not in mV.
MAX_PLAUSIBLE_MV = 20.0
# Below this the whole recording is flat or in volts rather than millivolts.
MIN_PLAUSIBLE_MV = 0.05


def input_notes(ecg: ECG, prepared: Prepared, window_s: float) -> InputNotes:
    """InputNotes for one ECG as read (`ecg`) and as the encoder saw it (`prepared`)."""
    used = tuple(name for name, m in zip(STANDARD_LEADS, prepared.mask) if m)
    missing = tuple(name for name, m in zip(STANDARD_LEADS, prepared.mask) if not m)
    warnings: list[str] = []
    if missing:
        warnings.append(f"{len(missing)} of 12 standard leads missing or flat "
                        f"({', '.join(missing)}): findings that need them are not stated")
    if abs(ecg.fs - prepared.fs) > 1e-6:
        warnings.append(f"resampled from {ecg.fs:g} Hz to {prepared.fs:g} Hz")
    n_win = int(prepared.windows.shape[0])
    if ecg.duration_s > window_s * 1.5:
        warnings.append(f"{ecg.duration_s:.0f} s recording: the embedding pools {n_win} windows "
                        f"of {window_s:g} s; `regen scan` localises findings along a long "
                        "record")
    elif ecg.duration_s < window_s * 0.9:
        warnings.append(f"{ecg.duration_s:.1f} s recording, shorter than the {window_s:g} s "
                        "window: zero-padded")
    rec = prepared.windows[:, prepared.mask]                    # (W, leads used, T)
    span = float(np.median(np.ptp(rec, axis=-1))) if rec.size else 0.0
    implausible = False
    if span > MAX_PLAUSIBLE_MV:
        implausible = True
        warnings.append(f"implausible amplitude: median lead span {span:.3g} mV (an ECG spans "
                        f"about 0.5-5 mV); the signal is probably in microvolts, not mV: "
                        "regen abstains; convert it (or fix the header's units)")
    elif span < MIN_PLAUSIBLE_MV:
        implausible = True
        warnings.append(f"implausible amplitude: median lead span {span:.3g} mV; the signal is "
                        "probably in volts, not mV, or disconnected: regen abstains")
    return InputNotes(used, missing, float(ecg.fs), float(prepared.fs), float(ecg.duration_s),
                      float(window_s), n_win, tuple(warnings), implausible)
