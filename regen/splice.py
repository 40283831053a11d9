"""Long records made by joining real short ECGs end to end, with the truth of where each one
lies: the test and benchmark material for `regen scan`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regen.ecg import ECG
from regen.errors import ECGReadError


@dataclass(frozen=True)
class Piece:
    """Where one source ECG lies in the spliced record, in seconds, and its labels."""

    start_s: float
    end_s: float
    id: str
    labels: frozenset[str]


def splice(ecgs: Sequence[ECG], labels: Sequence[frozenset[str]], record_id: str = "spliced",
           leads: Sequence[str] | None = None) -> tuple[ECG, tuple[Piece, ...]]:
    """ECGs of one rate and lead set (or all holding `leads`), joined in order -> the record
    (leads, sum of samples) and each piece's span and labels. Each piece is shifted to its
    own median, so baselines meet at the splice points as a recorder's high-pass would."""
    if not ecgs:
        raise ECGReadError("splice: no ECGs given; expected at least one")
    want = tuple(leads) if leads else ecgs[0].leads
    fs = ecgs[0].fs
    parts, pieces, t = [], [], 0.0
    for e, lab in zip(ecgs, labels):
        if e.fs != fs:
            raise ECGReadError(f"splice: {e.id} is at {e.fs} Hz, {ecgs[0].id} at {fs} Hz; "
                               f"resample them to one rate first")
        sig = e.select(list(want)).signal
        sig = sig - np.median(sig, axis=1, keepdims=True)
        parts.append(sig)
        pieces.append(Piece(round(t, 4), round(t + sig.shape[1] / fs, 4), e.id, lab))
        t += sig.shape[1] / fs
    out = ECG(np.concatenate(parts, axis=1).astype(np.float32), fs, want, record_id)
    return out, tuple(pieces)


__all__ = ["Piece", "splice"]
