"""Reading and preparing many corpus records, with progress, and label matrices for them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from regen.corpus import SUPERCLASSES, CorpusRecord
from regen.encoder import EncoderConfig
from regen.errors import ECGReadError
from regen.prepare import Prepared, prepare
from regen.reader import read_ecg


def prepare_records(records: Sequence[CorpusRecord], cfg: EncoderConfig, *,
                    skip_bad: bool = False, progress: bool = True,
                    desc: str = "reading") -> tuple[list[Prepared], list[CorpusRecord],
                                                    list[str]]:
    """Read and prepare each record. Returns (prepared, the records kept, error messages).

    A bad record raises ECGReadError, unless skip_bad, which keeps its message and goes on.
    """
    prepared, kept, errors = [], [], []
    for rec in tqdm(records, desc=desc, unit="ecg", disable=not progress, leave=False):
        try:
            p = prepare(read_ecg(rec.path), fs=cfg.fs, window_s=cfg.window_s, band=cfg.band)
        except ECGReadError as exc:
            if not skip_bad:
                raise
            errors.append(str(exc))
            continue
        prepared.append(p.with_id(rec.key))
        kept.append(rec)
    return prepared, kept, errors


def superclass_matrix(records: Sequence[CorpusRecord]) -> np.ndarray:
    """(N, 5) float32 multi-hot over SUPERCLASSES (NORM, MI, STTC, CD, HYP)."""
    y = np.zeros((len(records), len(SUPERCLASSES)), dtype=np.float32)
    for i, r in enumerate(records):
        for c in r.superclasses:
            y[i, SUPERCLASSES.index(c)] = 1.0
    return y


def first_windows(items: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray]:
    """((N, 12, T), (N, 12)): each recording's first window and mask, for training."""
    return (np.stack([p.windows[0] for p in items]).astype(np.float32),
            np.stack([p.mask for p in items]))
